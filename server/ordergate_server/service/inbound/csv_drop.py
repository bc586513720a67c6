"""Goods-in CSV files from the drop folders: purchase orders, receipts and returns
(docs/inbound.md, "CSV file drop").

The kind of a file is told by its header row: each kind has required columns and may have
optional ones, and a header matching no kind is refused. A file is applied whole or not at
all: every row is checked first (each problem named by line and column), then every purchase
order, receipt or return of the file goes through the same service functions as the RPCs, in
ONE transaction that also records the file (imported_files, by content hash). So a poller killed
after that commit and before the file left the inbox finds the file recorded on its next pass
and only moves it, with the stored result: applied once. A refused file records nothing: fixed
(or once what it needs exists, such as the purchase order a receipt names) it can be dropped
again. The folder's client acts, with its role, as the role table says for the RPCs.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from ...domain.access import Principal
from ...domain.permissions import may
from ...storage import Database, catalog, imported_files, orders
from ...storage import purchase_orders as po_store
from ..errors import ServiceError
from ..file_import import FILE_PROBLEM, FILE_PROCESSED, FileResult
from . import purchase_orders, returns

MAX_ROWS = 100_000
# Fixed forever: receipts from files are recorded under uuid5(namespace, client/sha256/order).
_FILE_RECEIPTS = uuid.UUID("3c1f6a52-6f0e-5a2b-9d4c-7b8e2a1f0c93")


@dataclass(frozen=True)
class Kind:
    name: str
    required: tuple[str, ...]
    optional: tuple[str, ...]
    rpcs: tuple[str, ...]  # what the folder's client must be allowed to call


PURCHASE_ORDERS = Kind(
    "purchase_orders",
    ("order-id", "sku", "quantity", "delivery-date", "special-notes"),
    ("supplier", "location", "line"),
    ("InboundService/CreatePurchaseOrder",),
)
RECEIPTS = Kind(
    "receipts",
    ("order-id", "sku", "received"),
    ("damaged", "variance-reason", "line", "note"),
    ("InboundService/RecordReceipt",),
)
RETURNS = Kind(
    "returns",
    ("return-id", "original-order-id", "reason", "disposition"),
    ("line", "quantity", "location"),
    ("ReturnService/CreateReturn",),
)
KINDS = (PURCHASE_ORDERS, RECEIPTS, RETURNS)
# A returns file with dispositions also receives and triages.
_DISPOSING = ("ReturnService/ReceiveReturn", "ReturnService/TriageReturn")


@dataclass(frozen=True)
class Row:
    line: int  # the file's line number (the header is line 1)
    values: dict[str, str]

    def get(self, column: str) -> str:
        return self.values.get(column, "").strip()


class Refused(Exception):
    """A file that cannot be applied: its problems, by line and column."""

    def __init__(self, reason: str, problems: list[dict[str, Any]]) -> None:
        super().__init__(reason)
        self.reason = reason
        self.problems = problems


def is_csv_file(name: str) -> bool:
    return name.lower().endswith(".csv")


def import_csv(db: Database, principal: Principal, file_name: str, content: bytes) -> FileResult:
    content_sha256 = hashlib.sha256(content).hexdigest()
    now = datetime.now(UTC)
    header = {
        "file": file_name,
        "client": principal.client_name,
        "sha256": content_sha256,
        "imported_at": now.isoformat().replace("+00:00", "Z"),
    }
    with db.reader() as conn:
        earlier = imported_files.find_result(conn, principal.client_id, content_sha256)
    if earlier is not None:  # applied already (a copy, or a pass killed before the move)
        return FileResult(
            FILE_PROCESSED,
            {
                **header,
                "kind": earlier["kind"],
                "copy_of": {"file": earlier["file"], "imported_at": earlier["imported_at"]},
                "applied": earlier["applied"],
            },
        )
    kind: Kind | None = None
    try:
        kind, rows = parse(content)
        needed = kind.rpcs + (_DISPOSING if kind is RETURNS and _disposes(rows) else ())
        refused = [rpc for rpc in needed if not may(principal.role, rpc)]
        if refused:
            raise Refused(
                "ROLE_NOT_ALLOWED",
                [
                    _problem(
                        1,
                        "",
                        "ROLE_NOT_ALLOWED",
                        f"Client {principal.client_name} ({principal.role.value}) may not call "
                        f"{', '.join(refused)}.",
                    )
                ],
            )
        with db.transaction() as tx:
            applied = _APPLY[kind.name](tx, principal, content_sha256, file_name, rows, now)
            report = {**header, "kind": kind.name, "applied": applied}
            imported_files.record(
                tx,
                client_id=principal.client_id,
                content_sha256=content_sha256,
                file_name=file_name,
                imported_at=now,
                result=report,
            )
    except Refused as bad:
        return FileResult(
            FILE_PROBLEM,
            {
                **header,
                "kind": kind.name if kind else "",
                "error": {"reason": bad.reason, "message": "Nothing of the file was applied."},
                "problems": bad.problems,
            },
        )
    except IntegrityError:  # another poller applied the same file at the same moment
        return import_csv(db, principal, file_name, content)
    return FileResult(FILE_PROCESSED, report)


# --- reading -----------------------------------------------------------------------------------


def parse(content: bytes) -> tuple[Kind, list[Row]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Refused(
            "ENCODING_INVALID",
            [_problem(text_line(content, exc.start), "", "ENCODING_INVALID", "Not UTF-8.")],
        ) from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        head = next(reader, None)
        if head is None:
            raise Refused("FILE_EMPTY", [_problem(1, "", "FILE_EMPTY", "The file is empty.")])
        columns = [name.strip().lower() for name in head]
        kind = _kind(columns)
        rows = []
        for values in reader:
            if not any(value.strip() for value in values):
                continue
            if len(values) != len(columns):
                raise Refused(
                    "ROW_INVALID",
                    [
                        _problem(
                            reader.line_num,
                            "",
                            "ROW_INVALID",
                            f"{len(values)} values; the header has {len(columns)} columns.",
                        )
                    ],
                )
            rows.append(Row(reader.line_num, dict(zip(columns, values, strict=True))))
            if len(rows) > MAX_ROWS:
                raise Refused(
                    "TOO_MANY_ROWS",
                    [_problem(reader.line_num, "", "TOO_MANY_ROWS", f"At most {MAX_ROWS:,} rows.")],
                )
    except csv.Error as exc:
        raise Refused(
            "CSV_MALFORMED", [_problem(reader.line_num, "", "CSV_MALFORMED", str(exc)[:200])]
        ) from None
    if not rows:
        raise Refused("FILE_EMPTY", [_problem(1, "", "FILE_EMPTY", "No rows under the header.")])
    return kind, rows


def text_line(content: bytes, offset: int) -> int:
    return content[:offset].count(b"\n") + 1


def _kind(columns: list[str]) -> Kind:
    for kind in KINDS:
        if set(kind.required) <= set(columns):
            unknown = [c for c in columns if c not in kind.required + kind.optional]
            repeated = sorted({c for c in columns if columns.count(c) > 1})
            if unknown or repeated:
                raise Refused(
                    "HEADER_INVALID",
                    [
                        _problem(1, column, "COLUMN_UNKNOWN", f"Not a {kind.name} column.")
                        for column in unknown
                    ]
                    + [_problem(1, c, "COLUMN_REPEATED", "Named twice.") for c in repeated],
                )
            return kind
    expected = "; ".join(",".join(kind.required) for kind in KINDS)
    raise Refused(
        "HEADER_INVALID",
        [_problem(1, "", "HEADER_INVALID", f"The header names no known kind of file: {expected}.")],
    )


def _disposes(rows: Sequence[Row]) -> bool:
    return any(row.get("disposition") for row in rows)


def _problem(line: int, column: str, reason: str, message: str) -> dict[str, Any]:
    return {"line": line, "column": column, "reason": reason, "message": message}


def _whole(row: Row, column: str, *, required: bool = True) -> int:
    value = row.get(column)
    if not value and not required:
        return 0
    if not value.isdigit() or len(value) > 10:
        raise Refused(
            "VALUE_INVALID",
            [_problem(row.line, column, "VALUE_INVALID", "Not a whole number of 0 or more.")],
        )
    return int(value)


def _groups(rows: Sequence[Row], column: str) -> dict[str, list[Row]]:
    groups: dict[str, list[Row]] = {}
    for row in rows:
        key = row.get(column)
        if not key:
            raise Refused("VALUE_MISSING", [_problem(row.line, column, "VALUE_MISSING", "Empty.")])
        groups.setdefault(key, []).append(row)
    return groups


def _same(rows: Sequence[Row], column: str) -> str:
    """The one value of `column` over a group's rows (empty cells aside)."""
    values = {row.get(column) for row in rows} - {""}
    if len(values) > 1:
        raise Refused(
            "VALUE_CONFLICT",
            [_problem(rows[0].line, column, "VALUE_CONFLICT", "Differs between rows of one id.")],
        )
    return values.pop() if values else ""


_FIELD = re.compile(r"^lines\[(\d+)\](?:\.(\w+))?$")


def _refused_by(error: ServiceError, rows: Sequence[Row], columns: dict[str, str]) -> Refused:
    """A service's refusal of one group, told as the rows and columns it came from."""
    problems = []
    for violation in error.field_violations or [None]:  # type: ignore[list-item]
        line, column = rows[0].line, ""
        if violation is not None:
            match = _FIELD.match(violation.field)
            if match and int(match.group(1)) < len(rows):
                line = rows[int(match.group(1))].line
                column = columns.get(match.group(2) or "", "")
            else:
                column = columns.get(violation.field, "")
        problems.append(_problem(line, column, error.reason, error.message))
    return Refused(error.reason, problems)


# --- applying ----------------------------------------------------------------------------------

_PO_COLUMNS = {
    "po_number": "order-id",
    "supplier": "supplier",
    "location_code": "location",
    "code": "sku",
    "quantity": "quantity",
    "expected_date": "delivery-date",
    "notes": "special-notes",
    "line_number": "line",
}


def _purchase_orders(
    tx: Connection,
    principal: Principal,
    sha256: str,
    file_name: str,
    rows: Sequence[Row],
    now: datetime,
) -> list[dict[str, Any]]:
    """One purchase order per order-id; the supplier is the `supplier` column or the folder's
    client, the location the `location` column or the first location by priority."""
    first_location = (catalog.locations_by_priority(tx) or [""])[0]
    applied = []
    for po_number, group in _groups(rows, "order-id").items():
        lines = [
            purchase_orders.NewLine(
                _whole(row, "line", required=False),
                row.get("sku"),
                _whole(row, "quantity"),
                row.get("delivery-date"),
                row.get("special-notes"),
            )
            for row in group
        ]
        try:
            order, replayed = purchase_orders.create_in(
                tx,
                principal,
                po_number,
                _same(group, "supplier") or principal.client_name,
                _same(group, "location") or first_location,
                lines,
                "",
                now,
            )
        except ServiceError as error:
            raise _refused_by(error, group, _PO_COLUMNS) from None
        applied.append(
            {
                "order-id": po_number,
                "rows": [row.line for row in group],
                "state": order.state,
                "replayed": replayed,
            }
        )
    return applied


_RECEIPT_COLUMNS = {
    "po_number": "order-id",
    "code": "sku",
    "received_quantity": "received",
    "damaged_quantity": "damaged",
    "variance_reason": "variance-reason",
    "line_number": "line",
    "note": "note",
}


def _receipts(
    tx: Connection,
    principal: Principal,
    sha256: str,
    file_name: str,
    rows: Sequence[Row],
    now: datetime,
) -> list[dict[str, Any]]:
    """One receipt per order-id (its rows: its lines)."""
    applied = []
    for po_number, group in _groups(rows, "order-id").items():
        lines = [
            purchase_orders.ReceivedLine(
                _whole(row, "line", required=False),
                row.get("sku"),
                _whole(row, "received"),
                _whole(row, "damaged", required=False),
                row.get("variance-reason"),
            )
            for row in group
        ]
        request_id = str(uuid.uuid5(_FILE_RECEIPTS, f"{principal.client_id}/{sha256}/{po_number}"))
        note = _same(group, "note") or f"file {file_name}"
        try:
            receipt_id = purchase_orders.receive_in(
                tx, principal, request_id, po_number, lines, note[:2000], now
            )
        except ServiceError as error:
            raise _refused_by(error, group, _RECEIPT_COLUMNS) from None
        order = po_store.get(tx, po_number, full=False)
        assert order is not None
        applied.append(
            {
                "order-id": po_number,
                "rows": [row.line for row in group],
                "receipt_id": receipt_id,
                "state": order.state,
            }
        )
    return applied


_RETURN_COLUMNS = {
    "rma_id": "return-id",
    "order_id": "original-order-id",
    "reason": "reason",
    "line_number": "line",
    "quantity": "quantity",
    "location_code": "location",
    "decision": "disposition",
}
_DISPOSITIONS = {"RESTOCK": returns.RESTOCK, "REWORK": returns.REWORK, "DISPOSE": returns.DISPOSE}


def _returns(
    tx: Connection,
    principal: Principal,
    sha256: str,
    file_name: str,
    rows: Sequence[Row],
    now: datetime,
) -> list[dict[str, Any]]:
    """One return per return-id. Rows with `line` (and `quantity`) return those lines, rows
    without return everything shipped and not yet returning. With a disposition the goods are
    also received (at `location`, else where the order was allocated, else the first location)
    and triaged: RESTOCK, REWORK or DISPOSE (the reason is the disposal's)."""
    applied = []
    for rma_id, group in _groups(rows, "return-id").items():
        try:
            applied.append(_one_return(tx, principal, rma_id, group, file_name, now))
        except ServiceError as error:
            raise _refused_by(error, group, _RETURN_COLUMNS) from None
    return applied


def _one_return(
    tx: Connection,
    principal: Principal,
    rma_id: str,
    group: list[Row],
    file_name: str,
    now: datetime,
) -> dict[str, Any]:
    wanted = [
        (_whole(row, "line"), _whole(row, "quantity", required=False) or 0)
        for row in group
        if row.get("line")
    ]
    if wanted and len(wanted) != len(group):
        raise Refused(
            "VALUE_MISSING",
            [_problem(group[0].line, "line", "VALUE_MISSING", "Name the line on every row.")],
        )
    dispositions = {row.get("disposition").upper() for row in group}
    if len(dispositions) > 1 or not dispositions <= {"", *_DISPOSITIONS}:
        raise Refused(
            "VALUE_INVALID",
            [
                _problem(
                    group[0].line,
                    "disposition",
                    "VALUE_INVALID",
                    "One of RESTOCK, REWORK or DISPOSE (or empty), the same on every row.",
                )
            ],
        )
    disposition = dispositions.pop()
    reason = _same(group, "reason")
    lines = wanted  # a line without pieces: every shipped piece of it not yet returning
    found, replayed = returns.create_in(
        tx, principal, rma_id, _same(group, "original-order-id"), lines, reason, now
    )
    if disposition and found.state == returns.AUTHORIZED:
        order = orders.get_order(tx, client_id=None, order_id=found.order_id)
        assert order is not None
        location = (
            _same(group, "location")
            or order.allocation_location
            or (catalog.locations_by_priority(tx) or [""])[0]
        )
        returns.receive_in(
            tx, principal, rma_id, found.client, location, [], f"file {file_name}", now
        )
        found = returns.triage_in(
            tx,
            principal,
            rma_id,
            found.client,
            [
                returns.Decision(line.line_number, _DISPOSITIONS[disposition], 0, reason)
                for line in found.lines
            ],
            now,
        )
    return {
        "return-id": rma_id,
        "rows": [row.line for row in group],
        "state": found.state,
        "credit_note_id": found.credit_note_id,
        "replayed": replayed,
    }


_APPLY: dict[str, Callable[..., list[dict[str, Any]]]] = {
    PURCHASE_ORDERS.name: _purchase_orders,
    RECEIPTS.name: _receipts,
    RETURNS.name: _returns,
}
