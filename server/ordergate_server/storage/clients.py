"""API clients and their keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, select

from ..domain.access import Role
from . import tables as t


@dataclass(frozen=True)
class StoredKey:
    client_id: int
    client_name: str
    role: Role
    secret_sha256: str
    revoked_at: datetime | None


def ensure_client(conn: Connection, name: str, role: Role, now: datetime) -> int:
    """The id of client `name`, created with `role` if it does not exist yet.

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
    conn: Connection, *, key_id: str, client_id: int, secret_sha256: str, label: str, now: datetime
) -> None:
    conn.execute(
        t.api_keys.insert().values(
            id=key_id, client_id=client_id, secret_sha256=secret_sha256, label=label, created_at=now
        )
    )


def find_key(conn: Connection, key_id: str) -> StoredKey | None:
    row = conn.execute(
        select(
            t.api_keys.c.client_id,
            t.clients.c.name,
            t.clients.c.role,
            t.api_keys.c.secret_sha256,
            t.api_keys.c.revoked_at,
        )
        .join(t.clients, t.clients.c.id == t.api_keys.c.client_id)
        .where(t.api_keys.c.id == key_id)
    ).first()
    if row is None:
        return None
    return StoredKey(row.client_id, row.name, Role(row.role), row.secret_sha256, row.revoked_at)
