"""The audit log: who changed what, when and why; written in the changing transaction."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from . import tables as t


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    reason: str = ""
    before: Any = None
    after: Any = None


def record(conn: Connection, entries: Sequence[AuditEntry]) -> None:
    if entries:
        conn.execute(
            t.audit_entries.insert(),
            [
                {
                    "at": e.at,
                    "actor": e.actor,
                    "role": e.role,
                    "action": e.action,
                    "subject": e.subject,
                    "reason": e.reason,
                    "before": e.before,
                    "after": e.after,
                }
                for e in entries
            ],
        )


@dataclass(frozen=True)
class AuditQuery:
    subject: str = ""
    actor: str = ""
    start: datetime | None = None
    end: datetime | None = None


def search(
    conn: Connection, query: AuditQuery, *, after_seq: int, limit: int
) -> list[tuple[int, AuditEntry]]:
    """Entries matching `query` after position `after_seq`, oldest first."""
    a = t.audit_entries.c
    statement = select(t.audit_entries).where(a.seq > after_seq).order_by(a.seq).limit(limit)
    if query.subject:
        statement = statement.where(a.subject == query.subject)
    if query.actor:
        statement = statement.where(a.actor == query.actor)
    if query.start is not None:
        statement = statement.where(a.at >= query.start)
    if query.end is not None:
        statement = statement.where(a.at < query.end)
    return [
        (r.seq, AuditEntry(r.at, r.actor, r.role, r.action, r.subject, r.reason, r.before, r.after))
        for r in conn.execute(statement)
    ]


def entries_for(conn: Connection, subject: str) -> list[AuditEntry]:
    a = t.audit_entries.c
    rows = conn.execute(select(t.audit_entries).where(a.subject == subject).order_by(a.seq))
    return [
        AuditEntry(r.at, r.actor, r.role, r.action, r.subject, r.reason, r.before, r.after)
        for r in rows
    ]
