"""Staff users (people who sign in to the console) and their sessions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Row, select

from ..domain.access import Role
from . import tables as t


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: Role
    password_hash: str
    created_at: datetime
    disabled_at: datetime | None
    failed_logins: int
    locked_until: datetime | None


def _user(row: Row[Any]) -> StaffUser:
    return StaffUser(
        row.id,
        row.username,
        Role(row.role),
        row.password_hash,
        row.created_at,
        row.disabled_at,
        row.failed_logins,
        row.locked_until,
    )


def find_user(conn: Connection, username: str) -> StaffUser | None:
    row = conn.execute(select(t.staff_users).where(t.staff_users.c.username == username)).first()
    return _user(row) if row is not None else None


def list_users(conn: Connection) -> list[StaffUser]:
    rows = conn.execute(select(t.staff_users).order_by(t.staff_users.c.username))
    return [_user(row) for row in rows]


def insert_user(
    conn: Connection, username: str, role: Role, password_hash: str, now: datetime
) -> None:
    conn.execute(
        t.staff_users.insert().values(
            username=username,
            role=role.value,
            password_hash=password_hash,
            created_at=now,
            failed_logins=0,
        )
    )


def update_user(conn: Connection, user_id: int, **values: object) -> None:
    conn.execute(t.staff_users.update().where(t.staff_users.c.id == user_id).values(**values))


def client_exists(conn: Connection, name: str) -> bool:
    return conn.execute(select(t.clients.c.id).where(t.clients.c.name == name)).first() is not None


@dataclass(frozen=True)
class StoredSession:
    user: StaffUser
    csrf_token: str
    created_at: datetime
    last_seen_at: datetime


def insert_session(
    conn: Connection, token_sha256: str, user_id: int, csrf_token: str, now: datetime
) -> None:
    conn.execute(
        t.staff_sessions.insert().values(
            token_sha256=token_sha256,
            user_id=user_id,
            csrf_token=csrf_token,
            created_at=now,
            last_seen_at=now,
        )
    )


def find_session(conn: Connection, token_sha256: str) -> StoredSession | None:
    s, u = t.staff_sessions, t.staff_users
    row = conn.execute(
        select(u, s.c.csrf_token, s.c.created_at.label("session_created"), s.c.last_seen_at)
        .join(s, s.c.user_id == u.c.id)
        .where(s.c.token_sha256 == token_sha256)
    ).first()
    if row is None:
        return None
    return StoredSession(_user(row), row.csrf_token, row.session_created, row.last_seen_at)


def touch_session(conn: Connection, token_sha256: str, now: datetime) -> None:
    conn.execute(
        t.staff_sessions.update()
        .where(t.staff_sessions.c.token_sha256 == token_sha256)
        .values(last_seen_at=now)
    )


def delete_session(conn: Connection, token_sha256: str) -> None:
    conn.execute(t.staff_sessions.delete().where(t.staff_sessions.c.token_sha256 == token_sha256))


def delete_sessions_of(conn: Connection, user_id: int) -> None:
    conn.execute(t.staff_sessions.delete().where(t.staff_sessions.c.user_id == user_id))


def delete_sessions_seen_before(conn: Connection, cutoff: datetime) -> int:
    result = conn.execute(t.staff_sessions.delete().where(t.staff_sessions.c.last_seen_at < cutoff))
    return result.rowcount or 0
