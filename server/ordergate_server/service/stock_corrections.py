"""Manual stock corrections: adjustments with a reason code and physical counts.

Each runs in one transaction: lock the stock record, change on hand, log the change (with its
request_id, so a retry is answered from the log), audit it, and if the location now has less on
hand than allocated, raise an OVERSOLD alert naming the newest accepted orders that are short.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from sqlalchemy import Connection, update

from ..domain.access import Principal
from ..domain.limits import MAX_PIECES, shown
from ..domain.model import HoldCode, HoldReason, OrderState
from ..storage import Database, alerts, audit, catalog, orders, stock_log
from ..storage import tables as t
from . import order_stock, stock_buckets
from .errors import ErrorKind, FieldViolation, ServiceError
from .order_access import locked_order, record_change

# The buckets a correction can name (service/stock_buckets.py).
SELLABLE = "SELLABLE"
QUARANTINE = "QUARANTINE"


@dataclass(frozen=True)
class Correction:
    sku: str
    location: str
    on_hand: int
    allocated: int
    variance: int  # the change of the corrected bucket
    oversold_order_ids: list[str] = field(default_factory=list)
    replayed: bool = False
    quarantine: int = 0
    bucket: str = SELLABLE


def adjust_stock(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    code: str,
    location: str,
    delta: int,
    reason_code: str,
    note: str = "",
    bucket: str = SELLABLE,
) -> Correction:
    if delta == 0:
        raise _invalid("DELTA_ZERO", "delta must not be 0.", "delta")
    if abs(delta) > MAX_PIECES:
        raise _out_of_range("delta", f"delta must be within ±{MAX_PIECES:,}.")
    if not reason_code.strip():
        raise _invalid("REASON_MISSING", "Give a reason code, such as POS_SALE.", "reason_code")
    reason = f"{reason_code.strip()}: {note}" if note else reason_code.strip()
    return _correct(
        db,
        principal,
        request_id,
        code,
        location,
        "ADJUSTMENT",
        reason,
        lambda level: level + delta,
        "delta",
        bucket,
    )


def record_stock_count(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    code: str,
    location: str,
    counted: int,
    reason: str,
    bucket: str = SELLABLE,
) -> Correction:
    if counted < 0:
        raise _invalid("COUNT_NEGATIVE", "A count cannot be negative.", "counted")
    if counted > MAX_PIECES:
        raise _out_of_range("counted", f"A count is at most {MAX_PIECES:,}.")
    if not reason.strip():
        raise _invalid("REASON_MISSING", "Say why the count was taken.", "reason")
    return _correct(
        db,
        principal,
        request_id,
        code,
        location,
        "COUNT",
        reason,
        lambda _: counted,
        "counted",
        bucket,
    )


def _correct(
    db: Database,
    principal: Principal,
    request_id: str,
    code: str,
    location: str,
    kind: str,
    reason: str,
    new_level: Callable[[int], int],
    quantity_field: str,
    bucket: str,
) -> Correction:
    try:
        uuid.UUID(request_id)
    except ValueError:
        raise _invalid("REQUEST_ID_INVALID", "request_id must be a UUID.", "request_id") from None
    now = datetime.now(UTC)
    with db.transaction() as tx:
        previous = stock_log.by_request_id(tx, request_id)
        if previous is not None:
            return Correction(
                previous.sku,
                previous.location,
                previous.on_hand_after,
                previous.allocated_after,
                previous.quarantine_delta if bucket == QUARANTINE else previous.on_hand_delta,
                alerts.order_ids_for_request(tx, request_id),
                replayed=True,
                quarantine=previous.quarantine_after,
                bucket=bucket,
            )
        sku = stock_sku(tx, code, location)
        return correct(
            tx,
            principal,
            sku=sku,
            location=location,
            kind=kind,
            reason=reason,
            new_level=new_level,
            quantity_field=quantity_field,
            bucket=bucket,
            request_id=request_id,
            now=now,
        )


def correct(
    tx: Connection,
    principal: Principal,
    *,
    sku: str,
    location: str,
    kind: str,
    reason: str,
    new_level: Callable[[int], int],
    quantity_field: str,
    bucket: str,
    request_id: str | None,
    now: datetime,
    alert_request_id: str | None = None,
) -> Correction:
    """Set one bucket of a stock record to `new_level(its level)`, in `tx`: log it, audit it,
    and when the location is left with less sellable stock than allocated, send the newest
    orders back as _oversold() says. A quarantine bucket never goes below 0."""
    record = stock_buckets.locked_record(tx, sku, location)
    before = record.quarantine if bucket == QUARANTINE else record.on_hand
    level = new_level(before)
    if not -MAX_PIECES <= level <= MAX_PIECES:
        raise _out_of_range(
            quantity_field,
            f"This would make {bucket.lower()} {level:,}; a stock record holds ±{MAX_PIECES:,}.",
        )
    if bucket == QUARANTINE and level < 0:
        raise _out_of_range(
            quantity_field, f"This would make quarantine {level:,}; it cannot go below 0."
        )
    delta = level - before
    if bucket == QUARANTINE:
        after = record._replace(quarantine=level)
    else:
        after = record._replace(on_hand=level)
    tx.execute(
        update(t.stock)
        .where(t.stock.c.sku == sku, t.stock.c.location == location)
        .values(on_hand=after.on_hand, quarantine=after.quarantine)
    )
    change = stock_log.StockChange(
        at=now,
        sku=sku,
        location=location,
        kind=kind,
        on_hand_delta=after.on_hand - record.on_hand,
        allocated_delta=0,
        on_hand_after=after.on_hand,
        allocated_after=record.allocated,
        actor=principal.client_name,
        reason=reason,
        request_id=request_id,
        quarantine_delta=after.quarantine - record.quarantine,
        quarantine_after=after.quarantine,
    )
    stock_log.record(tx, [change])
    audit.record(
        tx,
        [
            audit.AuditEntry(
                at=now,
                actor=principal.client_name,
                role=principal.role.value,
                action=f"stock.{kind.lower()}",
                subject=f"stock/{sku}@{location}",
                reason=reason,
                before=_buckets(record),
                after={**_buckets(after), "bucket": bucket},
            )
        ],
    )
    short = record.allocated - after.on_hand
    allocated = record.allocated
    oversold: list[str] = []
    if short > 0 and bucket == SELLABLE:
        oversold = _oversold(
            tx, principal, sku, location, short, alert_request_id or request_id, now
        )
        # Orders sent back to the queue released their stock in this transaction.
        allocated = catalog.stock_records(tx, [sku])[(sku, location)].allocated
    return Correction(
        sku, location, after.on_hand, allocated, delta, oversold, False, after.quarantine, bucket
    )


def _buckets(record: catalog.StockRow) -> dict[str, int]:
    return {
        "on_hand": record.on_hand,
        "allocated": record.allocated,
        "quarantine": record.quarantine,
    }


def stock_sku(tx: Connection, code: str, location: str) -> str:
    sku = catalog.resolve_any_codes(tx, [code]).get(code)
    if sku is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "PRODUCT_NOT_FOUND",
            f"No product has the code {shown(code)}.",
            field_violations=[FieldViolation("code", "unknown")],
        )
    if catalog.bundle_components(tx, [sku]):
        raise ServiceError(
            ErrorKind.FAILED_PRECONDITION,
            "BUNDLE_HAS_NO_STOCK",
            f"{sku} is a bundle; correct the stock of its components.",
        )
    if location not in {row.code for row in catalog.list_locations(tx, after=None, limit=10_000)}:
        raise _invalid("LOCATION_UNKNOWN", f"Unknown location {shown(location)}.", "location_code")
    return sku


def _oversold(
    tx: Connection,
    principal: Principal,
    sku: str,
    location: str,
    short: int,
    request_id: str | None,
    now: datetime,
) -> list[str]:
    """Name the newest orders holding `sku` at `location` until they cover the shortfall: the
    older orders keep their stock, as they were promised it first. Accepted orders are named
    first: they go back to the exception queue as STOCK_SHORT, their stock released, to be
    re-checked like any order held for stock (service/recheck.py); orders already being picked
    or packed keep their stock and get an OVERSOLD event for the warehouse."""
    holding = orders.holding_stock(tx, sku, location)
    accepted = [o for o in holding if o.state is OrderState.ACCEPTED]
    named: list[orders.AllocatedOrder] = []
    covered = 0
    for order in accepted + [o for o in holding if o.state is not OrderState.ACCEPTED]:
        if covered >= short:
            break
        named.append(order)
        covered += order.quantity
    message = f"{location} has {short} fewer {sku} on hand than allocated."
    ids = [order.id for order in named]
    alerts.raise_alert(
        tx,
        at=now,
        kind="OVERSOLD",
        message=message,
        order_ids=ids,
        sku=sku,
        location=location,
        request_id=request_id,
    )
    for named_order in named:
        locked = locked_order(tx, principal, named_order.id)
        if named_order.state is OrderState.ACCEPTED:
            order_stock.move(
                tx,
                principal.client_name,
                locked.order,
                order_stock.open_pieces(locked.order.lines),
                order_stock.RELEASE,
                now,
            )
            hold = HoldReason(
                HoldCode.STOCK_SHORT,
                "lines",
                f"{message} The order's stock was released; it is re-checked when stock "
                "rises (or accept it short, or cancel it).",
            )
            orders.set_state(
                tx,
                locked.seq,
                OrderState.ON_HOLD,
                now,
                hold_reasons=[hold],
                allocation_location=None,
            )
            record_change(
                tx,
                principal,
                locked,
                event="STOCK_SHORT",
                new_state=OrderState.ON_HOLD,
                detail=message,
                now=now,
            )
        else:
            record_change(
                tx,
                principal,
                locked,
                event="OVERSOLD",
                new_state=named_order.state,
                detail=message,
                now=now,
            )
    return ids


def _out_of_range(field_name: str, message: str) -> ServiceError:
    return _invalid("VALUE_OUT_OF_RANGE", message, field_name)


def _invalid(reason: str, message: str, field_name: str) -> ServiceError:
    return ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        reason,
        message,
        field_violations=[FieldViolation(field_name, message)],
    )
