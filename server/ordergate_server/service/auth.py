"""Verifying API keys on each call.

A key looks like `og_<id>_<secret>`. The id is stored in clear to find the key; the secret only
as a SHA-256 hash, compared in constant time. A key may have an expiry (rotation sets one on the
old key) and a list of networks it may be used from. Managing keys is service/api_keys.py.
"""

from __future__ import annotations

import hmac
import ipaddress
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from ..domain.access import Principal, Role
from ..storage import Database, clients
from .api_keys import KEY_PREFIX, create_key, secret_sha256
from .errors import ErrorKind, ServiceError

__all__ = ["KEY_PREFIX", "Authenticator", "create_api_key"]


def create_api_key(
    db: Database, client_name: str, role: Role, label: str = "", *, actor: str = "ordergate"
) -> str:
    """Create a key (see api_keys.create_key) and return it; it is shown this once."""
    return create_key(db, client_name, role, actor=actor, label=label)[1]


@dataclass(frozen=True)
class _Verified:
    principal: Principal
    expires_at: datetime | None
    networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]


class Authenticator:
    """Verifies keys, remembering good ones for `cache_seconds` (at most a second, config.py) so
    a busy client does not cost a database read per call: a revoked key, or one whose expiry a
    rotation moved, stops working within that time on every connection of this process. The
    expiry as read and a network restriction are checked on every call."""

    def __init__(self, db: Database, cache_seconds: float = 1.0) -> None:
        self._db = db
        self._ttl = cache_seconds
        self._cache: dict[str, tuple[float, _Verified]] = {}
        self._lock = threading.Lock()

    def authenticate(self, key: str, peer_address: str = "") -> Principal | None:
        """The caller of a key, or None for an unknown or revoked key. Raises ServiceError for
        a known key that is expired or used from a network it is not allowed from."""
        digest = secret_sha256(key)  # cache by hash: the cache never holds a usable key
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(digest)
        verified = cached[1] if cached and cached[0] > now else None
        if verified is None:
            verified = self._verify(key)
            if verified is None:
                return None
            with self._lock:
                if len(self._cache) > 10_000:
                    self._cache.clear()
                self._cache[digest] = (now + self._ttl, verified)
        if verified.expires_at is not None and verified.expires_at <= datetime.now(UTC):
            raise ServiceError(
                ErrorKind.UNAUTHENTICATED,
                "API_KEY_EXPIRED",
                "The API key has expired; use its replacement or ask for a new key.",
                metadata={"key_id": verified.principal.key_id},
            )
        if verified.networks and not _within(peer_address, verified.networks):
            raise ServiceError(
                ErrorKind.PERMISSION_DENIED,
                "CLIENT_ADDRESS_NOT_ALLOWED",
                f"This API key may not be used from {peer_address or 'this address'}.",
                metadata={"key_id": verified.principal.key_id, "peer": peer_address},
            )
        return verified.principal

    def _verify(self, key: str) -> _Verified | None:
        prefix, _, rest = key.partition("_")
        key_id, _, secret = rest.partition("_")
        if prefix != KEY_PREFIX or not key_id or not secret or len(key) > 200:
            return None
        with self._db.reader() as conn:
            stored = clients.find_key(conn, key_id)
        if stored is None or stored.revoked_at is not None:
            return None
        if not hmac.compare_digest(stored.secret_sha256, secret_sha256(secret)):
            return None
        return _Verified(
            Principal(stored.client_id, stored.client_name, stored.role, key_id=stored.key_id),
            stored.expires_at,
            tuple(ipaddress.ip_network(c) for c in stored.allowed_cidrs),
        )


def _within(
    address: str, networks: tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]
) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False  # no address (a Unix socket, say): a restricted key is refused
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in networks)
