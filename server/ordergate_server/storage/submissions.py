"""The submission log: every authenticated submission with its raw payload (nothing is lost).

Payloads are stored compressed (zlib): XML orders shrink several times over (docs/operations.md
has the ratios), and the submission log is the largest part of a database that keeps years of
orders. What is stored is `pack(payload)`, sealed when personal data is encrypted; reads open
and unpack it, and rows written before compression (no marker) are read as they are.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, bindparam, select

from . import pii
from . import tables as t
from .bulk import BulkInsert
from .driver_query import DriverQuery, Later
from .one_of import one_of

# Starts every compressed payload. Stored markers start with a NUL byte, which no document we
# take starts with; one that does anyway is always compressed, so what is stored is never
# ambiguous.
PACKED = b"\x00ogz"


# What a pruned document is replaced by (`ordergate prune`, service/retention.py): the row stays,
# for idempotency and duplicate detection; the document is gone.
PRUNED = b"\x00pruned"


def pack(payload: bytes) -> bytes:
    """The payload as stored: compressed, unless that does not make it smaller."""
    packed = PACKED + zlib.compress(payload, 6)
    return packed if len(packed) < len(payload) or payload.startswith(b"\x00") else payload


def unpack(stored: bytes) -> bytes:
    """The payload as received, from what `pack` stored."""
    stored = bytes(stored)
    return zlib.decompress(stored[len(PACKED) :]) if stored.startswith(PACKED) else stored


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
# Many at once: both columns of the unique key as IN lists (an index range each), the pairs
# that were not asked for dropped afterwards.
_FIND_MANY = DriverQuery(  # straight through the driver: once per group-commit batch
    select(_s.client_id, _s.request_id).where(
        and_(
            one_of(_s.client_id, "client_ids"),
            one_of(_s.request_id, "request_ids"),
        )
    )
)
_INSERT = BulkInsert(
    t.submissions,
    (
        "id",
        "client_id",
        "request_id",
        "received_at",
        "payload",
        "payload_sha256",
        "order_id",
        "outcome",
        "channel",
    ),
)


def find(conn: Connection, client_id: int, request_id: str) -> Submission | None:
    row = conn.execute(_FIND, {"client_id": client_id, "request_id": request_id}).first()
    return Submission(row.id, row.payload_sha256, row.order_id, row.outcome) if row else None


def send_claimed(conn: Connection, keys: Iterable[tuple[int, str]]) -> Later[set[tuple[int, str]]]:
    """Which of the (client_id, request_id) pairs `keys` are already claimed, in one statement
    sent ahead (DriverQuery.send): call the result for the set."""
    wanted = set(keys)
    if not wanted:
        return set
    rows = _FIND_MANY.send(
        conn,
        {
            "client_ids": sorted({client_id for client_id, _ in wanted}),
            "request_ids": sorted({request_id for _, request_id in wanted}),
        },
    )
    return lambda: {(client_id, request_id) for client_id, request_id in rows()} & wanted


@dataclass(frozen=True)
class NewSubmission:
    id: str
    client_id: int
    request_id: str
    received_at: datetime
    payload: bytes
    payload_sha256: str
    order_id: str | None
    outcome: str
    channel: str = "GRPC"


def insert_many(conn: Connection, new: Sequence[NewSubmission]) -> None:
    """Record submissions in one statement. Raises IntegrityError when a (client, request_id)
    is already taken: that unique key is the idempotency claim."""
    _INSERT(
        conn,
        [
            (
                s.id,
                s.client_id,
                s.request_id,
                s.received_at,
                pii.seal_bytes(conn, pack(s.payload), "submissions.payload"),
                s.payload_sha256,
                s.order_id,
                s.outcome,
                s.channel,
            )
            for s in new
        ],
    )


@dataclass(frozen=True)
class Document:
    """A document as received, with how and when."""

    submission_id: str
    request_id: str
    payload: bytes
    received_at: datetime
    channel: str


def current_document(conn: Connection, order_id: str) -> Document | None:
    """The document an order's content came from: its latest submission that created or
    replaced it (a replay or a refused duplicate names the order but changed nothing)."""
    s = t.submissions.c
    row = conn.execute(
        select(s.id, s.request_id, s.payload, s.received_at, s.channel)
        .where(s.order_id == order_id, s.outcome == "ORDER")
        .order_by(s.received_at.desc(), s.id.desc())
        .limit(1)
    ).first()
    if row is None or bytes(row.payload) == PRUNED:
        return None
    return Document(
        row.id,
        row.request_id,
        unpack(pii.open_bytes(conn, row.payload, "submissions.payload")),
        row.received_at,
        row.channel,
    )


def payload_of(conn: Connection, client_id: int, request_id: str) -> bytes | None:
    """The document as submitted (opened if personal data is encrypted)."""
    s = t.submissions.c
    stored = conn.execute(
        select(s.payload).where(and_(s.client_id == client_id, s.request_id == request_id))
    ).scalar_one_or_none()
    if stored is None:
        return None
    return unpack(pii.open_bytes(conn, stored, "submissions.payload"))
