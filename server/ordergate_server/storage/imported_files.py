"""Files imported from drop folders, by client and content hash."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, select

from . import tables as t


def find_result(conn: Connection, client_id: int, content_sha256: str) -> dict[str, Any] | None:
    """The stored result of the file with this content, if the client's file was imported."""
    f = t.imported_files.c
    row = conn.execute(
        select(f.result).where(and_(f.client_id == client_id, f.content_sha256 == content_sha256))
    ).first()
    return dict(row.result) if row else None


def record(
    conn: Connection,
    *,
    client_id: int,
    content_sha256: str,
    file_name: str,
    imported_at: datetime,
    result: dict[str, Any],
) -> None:
    """Record an imported file. Raises IntegrityError if this content is recorded already (two
    pollers on one folder): the caller's transaction should then end, keeping the first record."""
    conn.execute(
        t.imported_files.insert().values(
            client_id=client_id,
            content_sha256=content_sha256,
            file_name=file_name,
            imported_at=imported_at,
            result=result,
        )
    )


def website_client_id(conn: Connection, name: str) -> int | None:
    """The id of website client `name`; None if there is no such client or it is not a website."""
    row = conn.execute(
        select(t.clients.c.id).where(and_(t.clients.c.name == name, t.clients.c.role == "website"))
    ).first()
    return int(row.id) if row else None


def client_of(conn: Connection, name: str) -> tuple[int, str] | None:
    """(id, role) of client `name`; None if there is no such client."""
    row = conn.execute(
        select(t.clients.c.id, t.clients.c.role).where(t.clients.c.name == name)
    ).first()
    return (int(row.id), str(row.role)) if row else None
