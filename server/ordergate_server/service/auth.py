"""API keys: creation and verification.

A key looks like `og_<id>_<secret>`. The id is stored in clear to find the key; the secret only
as a SHA-256 hash (the secret is 256 random bits, so a plain hash is enough; no salt or slow hash
is needed) and compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from datetime import UTC, datetime

from ..domain.access import Principal, Role
from ..storage import Database, clients

KEY_PREFIX = "og"


def _sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_api_key(db: Database, client_name: str, role: Role, label: str = "") -> str:
    """Create a key for `client_name` (creating the client with `role` if needed); return the key.

    The key is shown this once; only its hash is stored."""
    key_id = secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    with db.transaction() as tx:
        client_id = clients.ensure_client(tx, client_name, role, now)
        clients.insert_key(
            tx,
            key_id=key_id,
            client_id=client_id,
            secret_sha256=_sha256(secret),
            label=label,
            now=now,
        )
    return f"{KEY_PREFIX}_{key_id}_{secret}"


class Authenticator:
    """Verifies keys, remembering good ones for `cache_seconds` so a busy client does not cost a
    database read per call (a revoked key stops working within that time)."""

    def __init__(self, db: Database, cache_seconds: float = 10.0) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    def authenticate(self, key: str) -> Principal | None:
        digest = _sha256(key)  # cache by hash: the cache never holds a usable key
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        if cached and cached[0] > now:
            return cached[1]
        principal = self._verify(key)
        if principal is not None:
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, principal)
        return principal

    def _verify(self, key: str) -> Principal | None:
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret or len(key) > 200:
            return None
        with self._db.reader() as conn:
            stored = clients.find_key(conn, key_id)
        if stored is None or stored.revoked_at is not None:
            return None
        if not hmac.compare_digest(stored.secret_sha256, _sha256(secret)):
            return None
        return Principal(stored.client_id, stored.client_name, stored.role)
