"""ReconcileStock: the warehouse's (or ERP's) counts against ours, for many products at once.

Ours is what is physically there: sellable on hand + quarantine. Every entry is kept with both
figures; a difference beyond the threshold (a percentage of ours; any difference where we hold
none) raises an INVENTORY_DIVERGENCE alert, which webhooks carry as `stock.divergence` and the
metrics count. Unless it is a dry run, their count then wins as RecordStockCount's does: the
difference goes to the sellable bucket (quarantine gives way only when sellable would go below
0), and orders left short go back to the queue. One transaction for the whole snapshot: it is
applied in full or not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.ids import new_id
from ..domain.limits import MAX_PIECES, shown
from ..storage import Database, alerts, audit, catalog, reconciliations
from . import stock_buckets, stock_corrections
from .errors import ErrorKind, FieldViolation, ServiceError
from .inbound import checks

MAX_ENTRIES = 10_000
DIVERGENCE = "INVENTORY_DIVERGENCE"


@dataclass(frozen=True)
class Entry:
    code: str
    location: str
    quantity: int


@dataclass(frozen=True)
class Difference:
    sku: str
    location: str
    ours: int
    theirs: int
    percent: float
    diverged: bool


@dataclass(frozen=True)
class Reconciliation:
    id: str  # "" for a dry run
    compared: int
    differences: list[Difference]
    threshold_percent: float
    dry_run: bool
    oversold_order_ids: list[str] = field(default_factory=list)
    replayed: bool = False

    @property
    def diverged(self) -> int:
        return sum(1 for d in self.differences if d.diverged)


def percent(ours: int, theirs: int) -> float:
    """|theirs - ours| as a percentage of ours; 100 when we hold none and they count some."""
    if theirs == ours:
        return 0.0
    if ours == 0:
        return 100.0
    return abs(theirs - ours) * 100.0 / abs(ours)


def reconcile_stock(
    db: Database,
    principal: Principal,
    *,
    request_id: str,
    source: str,
    entries: Sequence[Entry],
    threshold_percent: float,
    default_threshold: float,
    dry_run: bool,
) -> Reconciliation:
    checks.request_id(request_id)
    source = checks.text(source, "source", limit=200)
    threshold = _threshold(threshold_percent or default_threshold)
    if not 1 <= len(entries) <= MAX_ENTRIES:
        raise checks.invalid("ENTRIES_INVALID", f"Give 1 to {MAX_ENTRIES:,} entries.", "entries")
    now = datetime.now(UTC)
    if dry_run:
        with db.reader() as conn:
            wanted, differences, _ = _compare(conn, entries, threshold, lock=False)
        return Reconciliation("", len(wanted), differences, threshold, True)
    with db.transaction() as tx:
        earlier = reconciliations.by_request_id(tx, request_id)
        if earlier is not None:
            return _replayed(tx, earlier, request_id)
        wanted, differences, lines = _compare(tx, entries, threshold, lock=True)
        reconciliation_id = new_id()
        oversold: list[str] = []
        for difference in sorted(differences, key=lambda d: (d.sku, d.location)):
            oversold += _apply(tx, principal, difference, source, request_id, now)
            if difference.diverged:
                alerts.raise_alert(
                    tx,
                    at=now,
                    kind=DIVERGENCE,
                    message=(
                        f"{difference.location}: {source or 'the count'} has "
                        f"{difference.theirs} {difference.sku}, Ordergate had {difference.ours} "
                        f"({difference.percent:.1f}% off, threshold {threshold:g}%)."
                    ),
                    order_ids=[],
                    sku=difference.sku,
                    location=difference.location,
                    request_id=request_id,
                )
        reconciliations.insert(
            tx,
            {
                "id": reconciliation_id,
                "request_id": request_id,
                "at": now,
                "actor": principal.client_name,
                "source": source,
                "threshold_percent": f"{threshold:g}",
                "compared": len(wanted),
            },
            lines,
        )
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=now,
                    actor=principal.client_name,
                    role=principal.role.value,
                    action="stock.reconcile",
                    subject=f"reconciliation/{reconciliation_id}",
                    reason=source,
                    after={
                        "compared": len(wanted),
                        "differences": len(differences),
                        "diverged": sum(1 for d in differences if d.diverged),
                    },
                )
            ],
        )
    return Reconciliation(reconciliation_id, len(wanted), differences, threshold, False, oversold)


def _compare(
    conn: Connection, entries: Sequence[Entry], threshold: float, *, lock: bool
) -> tuple[dict[tuple[str, str], int], list[Difference], list[reconciliations.Line]]:
    """Their counts, the differences from ours, and every line as it is kept (with `lock`,
    the stock records stay locked, in key order, until the transaction ends)."""
    wanted = _resolve(conn, entries)
    records = catalog.stock_records(conn, {sku for sku, _ in wanted}, lock=lock)
    differences: list[Difference] = []
    lines: list[reconciliations.Line] = []
    for (sku, location), theirs in wanted.items():
        record = records.get((sku, location))
        ours = record.on_hand + record.quarantine if record else 0
        share = percent(ours, theirs)
        diverged = share > threshold
        lines.append(reconciliations.Line(sku, location, ours, theirs, diverged))
        if theirs != ours:
            differences.append(Difference(sku, location, ours, theirs, share, diverged))
    return wanted, differences, lines


def _threshold(value: float) -> float:
    try:
        threshold = float(Decimal(str(value)))
    except (InvalidOperation, ValueError):
        threshold = -1.0
    if not 0 < threshold <= 1000:
        raise checks.invalid(
            "THRESHOLD_INVALID",
            "threshold_percent is above 0 and at most 1,000.",
            "threshold_percent",
        )
    return threshold


def _resolve(tx: Connection, entries: Sequence[Entry]) -> dict[tuple[str, str], int]:
    """(sku, location) -> their count, in request order; every problem named by its entry."""
    skus = catalog.resolve_any_codes(tx, {entry.code for entry in entries})
    bundles = catalog.bundle_components(tx, set(skus.values()))
    known = {row.code for row in catalog.list_locations(tx, after=None, limit=10_000)}
    wanted: dict[tuple[str, str], int] = {}
    problems: list[FieldViolation] = []
    for index, entry in enumerate(entries):
        where = f"entries[{index}]"
        sku = skus.get(entry.code)
        if sku is None:
            problems.append(FieldViolation(f"{where}.code", f"unknown: {shown(entry.code)}"))
        elif sku in bundles:
            problems.append(FieldViolation(f"{where}.code", f"{sku} is a bundle"))
        elif entry.location not in known:
            problems.append(
                FieldViolation(f"{where}.location_code", f"unknown: {shown(entry.location)}")
            )
        elif not 0 <= entry.quantity <= MAX_PIECES:
            problems.append(FieldViolation(f"{where}.quantity", f"0 to {MAX_PIECES:,}"))
        elif (sku, entry.location) in wanted:
            problems.append(FieldViolation(where, f"{sku} at {entry.location} again"))
        else:
            wanted[(sku, entry.location)] = entry.quantity
        if len(problems) >= 20:
            break
    if problems:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "ENTRIES_INVALID",
            f"{len(problems)}{'+' if len(problems) >= 20 else ''} entries cannot be "
            "reconciled; nothing was changed.",
            field_violations=problems,
        )
    return wanted


def _apply(
    tx: Connection,
    principal: Principal,
    difference: Difference,
    source: str,
    request_id: str,
    now: datetime,
) -> list[str]:
    """Their count wins: the difference to sellable, quarantine giving way only below 0."""
    reason = f"reconciliation against {source or 'the warehouse count'}"
    record = stock_buckets.locked_record(tx, difference.sku, difference.location)
    sellable = record.on_hand + difference.theirs - difference.ours
    oversold: list[str] = []
    if sellable < 0:
        stock_corrections.correct(
            tx,
            principal,
            sku=difference.sku,
            location=difference.location,
            kind="RECONCILIATION",
            reason=reason,
            new_level=lambda _: max(0, record.quarantine + sellable),
            quantity_field="entries",
            bucket=stock_corrections.QUARANTINE,
            request_id=None,
            now=now,
        )
        sellable = 0
    done = stock_corrections.correct(
        tx,
        principal,
        sku=difference.sku,
        location=difference.location,
        kind="RECONCILIATION",
        reason=reason,
        new_level=lambda _: sellable,
        quantity_field="entries",
        bucket=stock_corrections.SELLABLE,
        request_id=None,
        now=now,
        alert_request_id=request_id,
    )
    oversold += done.oversold_order_ids
    return oversold


def _replayed(tx: Connection, stored: reconciliations.Stored, request_id: str) -> Reconciliation:
    threshold = float(stored.threshold_percent)
    differences = [
        Difference(
            line.sku,
            line.location,
            line.ours,
            line.theirs,
            percent(line.ours, line.theirs),
            line.diverged,
        )
        for line in stored.lines
        if line.ours != line.theirs
    ]
    return Reconciliation(
        stored.id,
        stored.compared,
        differences,
        threshold,
        False,
        alerts.order_ids_for_request(tx, request_id),
        replayed=True,
    )
