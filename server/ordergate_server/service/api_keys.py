"""The API-key lifecycle: create, list, revoke, rotate, expire. Every change is audited.

A key is shown once, when it is made; only the SHA-256 of its secret is stored, and neither the
key nor its hash is ever logged or listed. `actor` names who did it (for the CLI, the operating
system user), as the audit log records it.
"""

from __future__ import annotations

import hashlib
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from ..domain.access import Role, client_role_for
from ..storage import Database, audit, clients
from .errors import ErrorKind, FieldViolation, ServiceError

KEY_PREFIX = "og"
_AUDIT_ROLE = "admin"  # key operations are an administrator's act, whoever runs the CLI


@dataclass(frozen=True)
class KeyInfo:
    """What may be shown about a key: never its secret or hash."""

    key_id: str
    client: str
    role: Role
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None
    allowed_cidrs: tuple[str, ...]
    replaced_by: str | None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def secret_sha256(secret: str) -> str:
    # The secret is 256 random bits: a plain hash is enough (no salt or slow hash needed).
    return hashlib.sha256(secret.encode()).hexdigest()


def normalized_cidrs(cidrs: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The networks as canonical CIDR strings; ServiceError for one that is not a network."""
    result = []
    for text in cidrs:
        try:
            result.append(str(ipaddress.ip_network(text.strip(), strict=False)))
        except ValueError:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "CIDR_INVALID",
                f"{text!r} is not an IP network such as 203.0.113.0/24 or 2001:db8::/32.",
                field_violations=[FieldViolation("allowed_cidrs", "not a CIDR network")],
            ) from None
    return tuple(result)


def create_key(
    db: Database,
    client_name: str,
    role: Role,
    *,
    actor: str,
    label: str = "",
    expires_at: datetime | None = None,
    allowed_cidrs: list[str] | tuple[str, ...] = (),
) -> tuple[str, str]:
    """Make a key for `client_name` (created if new); returns (key id, the key). A storefront
    key belongs to a website client (created as one if new).

    Raises ValueError if the client exists with another role."""
    cidrs = normalized_cidrs(allowed_cidrs)
    key_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    now = datetime.now(UTC)
    client_role = client_role_for(role)
    with db.transaction() as tx:
        client_id = clients.ensure_client(tx, client_name, client_role, now)
        clients.insert_key(
            tx,
            key_id=key_id,
            client_id=client_id,
            secret_sha256=secret_sha256(secret),
            label=label,
            now=now,
            expires_at=expires_at,
            allowed_cidrs=cidrs,
            role=role if role is not client_role else None,
        )
        audit.record(
            tx,
            [
                _entry(
                    now,
                    actor,
                    "key.create",
                    key_id,
                    after={
                        "client": client_name,
                        "role": role.value,
                        "label": label,
                        "expires_at": expires_at.isoformat() if expires_at else None,
                        "allowed_cidrs": list(cidrs),
                    },
                )
            ],
        )
    return key_id, f"{KEY_PREFIX}_{key_id}_{secret}"


def list_keys(db: Database, client_name: str = "", *, actor: str = "") -> list[KeyInfo]:
    """The keys (of one client, if named). With `actor`, the listing itself is audited."""
    with db.reader() as conn:
        stored = clients.list_keys(conn, client_name)
    if actor:
        now = datetime.now(UTC)
        with db.transaction() as tx:
            listed = f"keys of client {client_name}" if client_name else "all keys"
            audit.record(tx, [_entry(now, actor, "key.list", "*", reason=listed)])
    return [
        KeyInfo(
            s.key_id,
            s.client_name,
            s.role,
            s.label,
            s.created_at,
            s.expires_at,
            s.revoked_at,
            s.allowed_cidrs,
            s.replaced_by,
        )
        for s in stored
    ]


def revoke_key(db: Database, key_id: str, *, actor: str, reason: str = "") -> None:
    """Revoke a key (every server stops accepting it within ORDERGATE_AUTH_CACHE_SECONDS, at
    most a second)."""
    now = datetime.now(UTC)
    with db.transaction() as tx:
        stored = _existing(tx, key_id)
        if stored.revoked_at is not None:
            return  # revoking twice changes nothing and is not worth an error
        clients.update_key(tx, key_id, revoked_at=now)
        audit.record(
            tx,
            [
                _entry(
                    now,
                    actor,
                    "key.revoke",
                    key_id,
                    reason=reason,
                    after={"revoked_at": now.isoformat()},
                )
            ],
        )


def rotate_key(
    db: Database, key_id: str, *, actor: str, overlap: timedelta = timedelta(hours=24)
) -> tuple[str, str]:
    """Replace a key: a new one for the same client, role, label and networks, while the old
    one keeps working for `overlap` (both are valid in that window), then expires.
    Returns (new key id, the new key)."""
    now = datetime.now(UTC)
    new_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
    with db.transaction() as tx:
        old = _existing(tx, key_id, lock=True)
        if old.revoked_at is not None or (old.expires_at is not None and old.expires_at <= now):
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "KEY_NOT_ACTIVE",
                f"Key {key_id} is revoked or expired; create a new key instead.",
                metadata={"key_id": key_id},
            )
        old_expires = now + overlap
        if old.expires_at is not None:
            old_expires = min(old_expires, old.expires_at)
        clients.insert_key(
            tx,
            key_id=new_id,
            client_id=old.client_id,
            secret_sha256=secret_sha256(secret),
            label=old.label,
            now=now,
            expires_at=old.expires_at,
            allowed_cidrs=old.allowed_cidrs,
            role=old.role if client_role_for(old.role) is not old.role else None,
        )
        clients.update_key(tx, key_id, expires_at=old_expires, replaced_by=new_id)
        audit.record(
            tx,
            [
                _entry(
                    now,
                    actor,
                    "key.rotate",
                    key_id,
                    before={"expires_at": old.expires_at.isoformat() if old.expires_at else None},
                    after={"expires_at": old_expires.isoformat(), "replaced_by": new_id},
                )
            ],
        )
    return new_id, f"{KEY_PREFIX}_{new_id}_{secret}"


def _existing(tx: Connection, key_id: str, *, lock: bool = False) -> clients.StoredKey:
    stored = clients.find_key(tx, key_id, lock=lock)
    if stored is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "KEY_NOT_FOUND",
            f"There is no key {key_id}.",
            metadata={"key_id": key_id},
        )
    return stored


def _entry(
    now: datetime,
    actor: str,
    action: str,
    key_id: str,
    *,
    reason: str = "",
    before: object = None,
    after: object = None,
) -> audit.AuditEntry:
    return audit.AuditEntry(
        at=now,
        actor=actor,
        role=_AUDIT_ROLE,
        action=action,
        subject=f"api_key/{key_id}",
        reason=reason,
        before=before,
        after=after,
    )
