"""Stock holds resolve themselves: orders held for stock alone are re-checked when stock rises.

Every write to the stock log that raises what is available somewhere (an adjustment or count
up, a cancel or line cancel releasing an allocation, later receipts and returns) also marks its
SKU as risen (stock_rises), in the same transaction. `after_stock_changes`, run by every server
in the background (and at once after a stock-raising call of its own), takes the marked SKUs,
re-checks the orders held for stock alone (INSUFFICIENT_STOCK, STOCK_SHORT) that need one of
them, oldest first, accepts each that can now be allocated, with an event naming what rose, and
unmarks the SKUs, all in one transaction: a crash before its commit leaves the marks for the
next pass, one after it has done the work. Many rises of a SKU before a pass are one mark, one
re-check.

Exactly once: an order is accepted only while it is held for stock alone when its row is locked
(FOR UPDATE, re-evaluated after any wait). On PostgreSQL one pass runs at a time across every
worker and replica (a transaction-level advisory lock); on SQLite transactions are alone anyway.
Passes lock orders, then stock rows in SKU order, then marks in SKU order, as the writers do,
so re-checks racing new submissions and cancels never oversell and do not deadlock with them.

(The stock log itself, read from a cursor, was the first design: on PostgreSQL a sequence
number may become visible after a later one, or never, and waiting out such gaps delayed
re-checks by seconds.)

`recheck` is the same for staff (RecheckOrders): one order, or every stock-held order.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from ..domain.access import Principal
from ..domain.limits import shown
from ..domain.model import OrderState
from ..domain.records import OrderRecord
from ..storage import Database, catalog, orders, stock_log
from . import order_stock, submit
from .errors import ErrorKind, ServiceError
from .order_access import Locked, locked_order, record_change

PAGE = 200  # candidate orders locked and planned at a time
MARKS = 500  # risen SKUs taken per pass
# pg_try_advisory_xact_lock key: one pass at a time across workers and replicas.
_PASS_LOCK = 726575

# Names what triggered the re-check of an order, for its event.
_Why = Callable[[OrderRecord], str]


@dataclass(frozen=True)
class Rechecked:
    checked: int
    accepted: list[str]  # order ids, oldest first
    more: bool = False  # the pass took a full batch of marks: there may be more


def after_stock_changes(db: Database) -> Rechecked:
    """One pass over the SKUs marked as risen (see the module's doc)."""
    now = datetime.now(UTC)
    with db.transaction() as tx:
        if not db.first_to_take(tx, _PASS_LOCK):
            return Rechecked(0, [])  # another worker or replica is on it
        marked = stock_log.rises(tx, limit=MARKS)
        if not marked:
            return Rechecked(0, [])
        causes = {rise.sku: rise.cause for rise in marked}
        result = _recheck(
            tx,
            None,
            skus=set(causes),
            why=lambda order: _cause(order, causes),
            now=now,
            more=len(marked) == MARKS,
        )
        stock_log.forget_rises(tx, marked)
        return result


def recheck(db: Database, principal: Principal, order_id: str = "") -> Rechecked:
    """Staff's re-check now: one order (it must be held for stock alone), or all of them."""
    now = datetime.now(UTC)
    why = f"re-checked by {principal.client_name}"
    with db.transaction() as tx:
        if not order_id:
            return _recheck(tx, principal, skus=None, why=lambda _: why, now=now)
        locked = locked_order(tx, principal, order_id)
        if not locked.order.stock_hold or locked.order.state is not OrderState.ON_HOLD:
            codes = ",".join(sorted({r.code.value for r in locked.order.hold_reasons}))
            raise ServiceError(
                ErrorKind.FAILED_PRECONDITION,
                "NOT_STOCK_HELD",
                f"Order {shown(order_id)} is {locked.order.state.value}"
                + (f" held for {codes}" if codes else "")
                + "; only orders held for stock alone are re-checked (correct or release the "
                "others).",
                metadata={
                    "order": order_id,
                    "state": locked.order.state.value,
                    "hold_codes": codes,
                },
            )
        accepted = _accept_those_that_fit(tx, principal, [locked], lambda _: why, now)
        return Rechecked(1, [order.id for order in accepted])


def _recheck(
    tx: Connection,
    principal: Principal | None,
    *,
    skus: set[str] | None,
    why: _Why,
    now: datetime,
    more: bool = False,
) -> Rechecked:
    """Re-check the stock-held orders (those needing one of `skus`, when given), oldest first,
    a page at a time. With `skus`, stop once none of them is available anywhere: every order
    left needs one of them."""
    wanted = None if skus is None else skus | catalog.bundles_containing(tx, skus)
    checked, accepted, after = 0, [], 0
    while True:
        page = orders.stock_held(tx, skus=wanted, after_seq=after, limit=PAGE, lock=True)
        if not page:
            break
        checked += len(page)
        held = [Locked(seq, order) for seq, order in page]
        accepted += _accept_those_that_fit(tx, principal, held, why, now)
        after = page[-1][0]
        if skus is not None and not _any_available(tx, skus):
            break
    return Rechecked(checked, [order.id for order in accepted], more)


def _accept_those_that_fit(
    tx: Connection,
    principal: Principal | None,
    held: list[Locked],
    why: _Why,
    now: datetime,
) -> list[OrderRecord]:
    """Allocate each of the locked orders that fits, in order, from one read of their stock:
    an earlier order takes first, as at intake."""
    view = submit.StockView.read(
        tx, [order_stock.open_lines(locked.order.lines) for locked in held], lock=True
    )
    accepted = []
    actor = principal.client_name if principal else "system"
    for locked in held:
        plan = view.plan(order_stock.open_lines(locked.order.lines))
        if not plan.location:
            continue
        view.take(plan)
        submit.allocate(tx, actor, locked.order.id, plan, now)
        orders.set_state(
            tx, locked.seq, OrderState.ACCEPTED, now, allocation_location=plan.location
        )
        record_change(
            tx,
            principal,
            locked,
            event="ACCEPTED",
            new_state=OrderState.ACCEPTED,
            detail=f"{why(locked.order)}: allocated from {plan.location}",
            now=now,
            action="order.recheck",
            reason=why(locked.order),
            after={"state": "ACCEPTED", "allocation_location": plan.location},
        )
        accepted.append(locked.order)
    return accepted


def _any_available(tx: Connection, skus: Collection[str]) -> bool:
    records = catalog.stock_records(tx, skus)
    return any(row.on_hand - row.allocated > 0 for row in records.values())


def _cause(order: OrderRecord, causes: dict[str, str]) -> str:
    """What rose that this order needs, in words (the first of its SKUs that did)."""
    cause = next((causes[line.sku] for line in order.lines if line.sku in causes), None)
    # None: a bundle whose component rose.
    return f"re-checked after {cause or next(iter(causes.values()))}"
