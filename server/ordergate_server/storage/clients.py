"""API clients and their keys."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, Select, func, select

from ..domain.access import Role
from . import tables as t


@dataclass(frozen=True)
class StoredKey:
    key_id: str
    client_id: int
    client_name: str
    role: Role
    secret_sha256: str
    label: str
    created_at: datetime
    revoked_at: datetime | None
    expires_at: datetime | None
    allowed_cidrs: tuple[str, ...]
    replaced_by: str | None


def ensure_client(conn: Connection, name: str, role: Role, now: datetime) -> int:
    """The id of client `name`, created with `role` if it does not exist yet (`role` is the
    client's: for a storefront key, website; domain.access.client_role_for).

    Raises ValueError if it exists with another role: a role change is a deliberate act, not a
    side effect of making a key."""
    row = conn.execute(
        select(t.clients.c.id, t.clients.c.role).where(t.clients.c.name == name)
    ).first()
    if row is not None:
        if row.role != role.value:
            raise ValueError(f"client {name!r} exists with role {row.role!r}, not {role.value!r}")
        return int(row.id)
    return int(
        conn.execute(
            t.clients.insert()
            .values(name=name, role=role.value, created_at=now)
            .returning(t.clients.c.id)
        ).scalar_one()
    )


def insert_key(
    conn: Connection,
    *,
    key_id: str,
    client_id: int,
    secret_sha256: str,
    label: str,
    now: datetime,
    expires_at: datetime | None = None,
    allowed_cidrs: Sequence[str] = (),
    role: Role | None = None,
) -> None:
    """A key of `client_id`; `role` only when narrower than the client's (a storefront key)."""
    conn.execute(
        t.api_keys.insert().values(
            id=key_id,
            client_id=client_id,
            secret_sha256=secret_sha256,
            label=label,
            created_at=now,
            expires_at=expires_at,
            allowed_cidrs=list(allowed_cidrs),
            role=role.value if role is not None else None,
        )
    )


def _keys_query() -> Select[Any]:
    k = t.api_keys.c
    return select(
        k.id,
        k.client_id,
        t.clients.c.name,
        func.coalesce(k.role, t.clients.c.role).label("role"),
        k.secret_sha256,
        k.label,
        k.created_at,
        k.revoked_at,
        k.expires_at,
        k.allowed_cidrs,
        k.replaced_by,
    ).join(t.clients, t.clients.c.id == k.client_id)


def _stored(row: Row[Any]) -> StoredKey:
    return StoredKey(
        key_id=row.id,
        client_id=row.client_id,
        client_name=row.name,
        role=Role(row.role),
        secret_sha256=row.secret_sha256,
        label=row.label,
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        expires_at=row.expires_at,
        allowed_cidrs=tuple(row.allowed_cidrs or ()),
        replaced_by=row.replaced_by,
    )


def find_key(conn: Connection, key_id: str, *, lock: bool = False) -> StoredKey | None:
    query = _keys_query().where(t.api_keys.c.id == key_id)
    if lock:
        query = query.with_for_update(of=t.api_keys)
    row = conn.execute(query).first()
    return _stored(row) if row is not None else None


def list_keys(conn: Connection, client_name: str = "") -> list[StoredKey]:
    """Every key (of one client, if named), oldest first."""
    query = _keys_query().order_by(t.api_keys.c.created_at, t.api_keys.c.id)
    if client_name:
        query = query.where(t.clients.c.name == client_name)
    return [_stored(row) for row in conn.execute(query)]


def update_key(conn: Connection, key_id: str, **values: object) -> None:
    """Set revoked_at, expires_at or replaced_by of a key."""
    assert set(values) <= {"revoked_at", "expires_at", "replaced_by"}, values
    conn.execute(t.api_keys.update().where(t.api_keys.c.id == key_id).values(**values))
