"""Importing one dropped file: its orders go through `submit_order`, exactly as SubmitOrder's do.

Exactly once, across crashes: each order in a file is submitted with a request_id derived from
the client, the file's SHA-256 and the order's position in the file. `submit_order` claims that
request_id in the same transaction that stores the order, so a file read again after a crash
(between the commit and the move out of the inbox, say) replays the stored orders instead of
creating them again, and a file that was never committed is imported in full. The
imported_files row, written once all of a file's orders are in, records the file by content
hash and answers a later copy of the same file without reading it again.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError

from ..domain.access import Principal, Role
from ..domain.model import Channel, OrderSource, OrderState
from ..formats.batch import split_batch
from ..storage import Database, imported_files
from .errors import ServiceError
from .submit import SubmitLimits, submit_order

log = logging.getLogger(__name__)

# Fixed forever: request ids of file orders are uuid5(namespace, client/sha256/position).
_FILE_REQUEST_IDS = uuid.UUID("6f1d3c2a-93b4-5e0c-8a57-0d2b7c4e9f10")
FILE_PROCESSED = "processed"
FILE_PROBLEM = "problem"


@dataclass(frozen=True)
class FileResult:
    """What became of a file: the folder it belongs in and the result-file content."""

    folder: str  # FILE_PROCESSED when every order in it was accepted, else FILE_PROBLEM
    report: dict[str, Any]


def principal_for_folder(db: Database, client_name: str) -> Principal | None:
    """The identity a client's drop folder acts under, with the client's role (a website's
    folder takes orders; any client's takes the goods-in CSV files its role allows); None if
    there is no such client."""
    with db.reader() as conn:
        found = imported_files.client_of(conn, client_name)
    return None if found is None else Principal(found[0], client_name, Role(found[1]))


def file_request_id(principal: Principal, content_sha256: str, position: int) -> str:
    return str(uuid.uuid5(_FILE_REQUEST_IDS, f"{principal.client_id}/{content_sha256}/{position}"))


def import_file(
    db: Database,
    principal: Principal,
    file_name: str,
    content: bytes,
    *,
    limits: SubmitLimits,
) -> FileResult:
    """Submit every order in `content` (one order, or a batch) and report on each."""
    content_sha256 = hashlib.sha256(content).hexdigest()
    now = datetime.now(UTC)
    header = _header(principal, file_name, content_sha256, now)
    with db.reader() as conn:
        earlier = imported_files.find_result(conn, principal.client_id, content_sha256)
    if earlier is not None:
        # The same bytes again: nothing new to submit. Report what the first copy became.
        report = {
            **header,
            "copy_of": {"file": earlier["file"], "imported_at": earlier["imported_at"]},
            "orders": earlier["orders"],
        }
        return FileResult(folder_for(earlier), report)

    documents = split_batch(content, limits.document)
    if documents == []:
        return FileResult(
            FILE_PROBLEM,
            {
                **header,
                "error": {"reason": "EMPTY_BATCH", "message": "The batch holds no orders."},
                "orders": [],
            },
        )
    outcomes = [
        _submit_one(db, principal, content_sha256, position, document, limits)
        for position, document in enumerate(documents or [content], start=1)
    ]
    report = {**header, "orders": outcomes}
    try:
        with db.transaction() as tx:
            imported_files.record(
                tx,
                client_id=principal.client_id,
                content_sha256=content_sha256,
                file_name=file_name,
                imported_at=now,
                result=report,
            )
    except IntegrityError:
        log.info("file %s was recorded by another poller at the same time", file_name)
    return FileResult(folder_for(report), report)


def oversize_file(principal: Principal, file_name: str, size: int, limit: int) -> FileResult:
    """The answer for a file larger than the limit, which is set aside without being read
    (so neither its hash nor its orders are known)."""
    return FileResult(
        FILE_PROBLEM,
        {
            **_header(principal, file_name, "", datetime.now(UTC)),
            "error": {
                "reason": "FILE_TOO_LARGE",
                "message": f"The file is {size} bytes; the limit is {limit}.",
            },
            "orders": [],
        },
    )


def _header(principal: Principal, file_name: str, sha256: str, now: datetime) -> dict[str, Any]:
    return {
        "file": file_name,
        "client": principal.client_name,
        "sha256": sha256,
        "imported_at": now.isoformat().replace("+00:00", "Z"),
    }


_NOT_ACCEPTED = {OrderState.ON_HOLD.value, "REJECTED"}


def folder_for(report: dict[str, Any]) -> str:
    """processed/ when every order in the report was accepted, else problem/."""
    orders = report["orders"]
    accepted = bool(orders) and all(o["state"] not in _NOT_ACCEPTED for o in orders)
    return FILE_PROCESSED if accepted else FILE_PROBLEM


def _submit_one(
    db: Database,
    principal: Principal,
    content_sha256: str,
    position: int,
    document: bytes,
    limits: SubmitLimits,
) -> dict[str, Any]:
    request_id = file_request_id(principal, content_sha256, position)
    try:
        result = submit_order(
            db,
            principal,
            request_id=request_id,
            payload=document,
            limits=limits,
            channel=Channel.FILE_DROP,
            source=OrderSource.FILE_DROP,
        )
    except ServiceError as refused:  # e.g. an order id already accepted with other content
        return {
            "position": position,
            "state": "REJECTED",
            "error": {"reason": refused.reason, "message": refused.message},
        }
    order = result.order
    entry: dict[str, Any] = {
        "position": position,
        "order_id": order.client_order_id,
        "ordergate_id": order.id,
        "state": order.state.value,
        "replayed": result.replayed,
        "hold_reasons": [r.to_dict() for r in order.hold_reasons],
    }
    amended = result.amendment
    if amended is not None:  # a buyer's OrderCancellation or OrderChange (docs/ubl.md)
        entry["amendment"] = {"document_type": amended.kind, "accepted": amended.accepted}
        if not amended.accepted:
            entry["state"] = "REJECTED"  # the file goes to problem/
            entry["error"] = {"reason": amended.reason, "message": amended.message}
    return entry
