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


def entries_for(conn: Connection, subject: str) -> list[AuditEntry]:
    a = t.audit_entries.c
    rows = conn.execute(select(t.audit_entries).where(a.subject == subject).order_by(a.seq))
    return [
        AuditEntry(r.at, r.actor, r.role, r.action, r.subject, r.reason, r.before, r.after)
        for r in rows
    ]
