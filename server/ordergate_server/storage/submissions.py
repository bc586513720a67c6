"""The submission log: every authenticated submission with its raw payload (nothing is lost)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, select

from . import pii
from . import tables as t


@dataclass(frozen=True)
class Submission:
    id: str
    payload_sha256: str
    order_id: str | None
    outcome: str


# Built once: on the submit path, building a Core statement costs more than running it.
_s = t.submissions.c
_FIND = select(_s.id, _s.payload_sha256, _s.order_id, _s.outcome).where(
    and_(_s.client_id == bindparam("client_id"), _s.request_id == bindparam("request_id"))
)
_INSERT = t.submissions.insert()


def find(conn: Connection, client_id: int, request_id: str) -> Submission | None:
    row = conn.execute(_FIND, {"client_id": client_id, "request_id": request_id}).first()
    return Submission(row.id, row.payload_sha256, row.order_id, row.outcome) if row else None


def insert(
    conn: Connection,
    *,
    submission_id: str,
    client_id: int,
    request_id: str,
    received_at: datetime,
    payload: bytes,
    payload_sha256: str,
    order_id: str | None,
    outcome: str,
) -> None:
    """Record a submission. Raises IntegrityError when (client, request_id) is already taken:
    that unique key is the idempotency claim."""
    conn.execute(
        _INSERT,
        {
            "id": submission_id,
            "client_id": client_id,
            "request_id": request_id,
            "received_at": received_at,
            "payload": pii.seal_bytes(conn, payload, "submissions.payload"),
            "payload_sha256": payload_sha256,
            "order_id": order_id,
            "outcome": outcome,
        },
    )


def payload_of(conn: Connection, client_id: int, request_id: str) -> bytes | None:
    """The document as submitted (opened if personal data is encrypted)."""
    s = t.submissions.c
    stored = conn.execute(
        select(s.payload).where(and_(s.client_id == client_id, s.request_id == request_id))
    ).scalar_one_or_none()
    return None if stored is None else pii.open_bytes(conn, stored, "submissions.payload")
