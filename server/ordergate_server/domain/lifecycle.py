"""Order states and the guarded transitions between them.

ON_HOLD --correct/release/re-check--> ACCEPTED -> PICKING -> PICKED -> PACKED
    -> (shipments) PARTLY_DISPATCHED -> DISPATCHED -> DELIVERED
ON_HOLD or ACCEPTED --cancel--> CANCELLED (not once picking has started; lines can be)
PICKING or PICKED --un-pick--> ACCEPTED (with a reason)
ACCEPTED .. PACKED --manual hold--> ON_HOLD (MANUAL_HOLD, stock kept) --release--> back
ACCEPTED --stock short--> ON_HOLD (STOCK_SHORT, stock released)
"""

from __future__ import annotations

from .model import OrderState

S = OrderState

# Where the warehouse (TransitionOrder) may move an order next. Corrections, releases,
# re-checks, holds and shipments are actions of their own (service/).
NEXT: dict[OrderState, frozenset[OrderState]] = {
    S.ON_HOLD: frozenset({S.CANCELLED}),
    S.ACCEPTED: frozenset({S.PICKING, S.CANCELLED}),
    S.PICKING: frozenset({S.PICKED, S.ACCEPTED}),
    S.PICKED: frozenset({S.PACKED, S.ACCEPTED}),
    S.PACKED: frozenset({S.DISPATCHED}),
    S.PARTLY_DISPATCHED: frozenset({S.DISPATCHED}),
    S.DISPATCHED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
}

# Going back to ACCEPTED from these is an un-pick: it needs a reason.
UNPICKABLE = frozenset({S.PICKING, S.PICKED})

# States an order may be put on a manual hold from (accepted, not yet shipped).
HOLDABLE = frozenset({S.ACCEPTED, S.PICKING, S.PICKED, S.PACKED})

# States in which lines may still be cancelled (what has not shipped).
LINES_CANCELLABLE = frozenset(
    {S.ON_HOLD, S.ACCEPTED, S.PICKING, S.PICKED, S.PACKED, S.PARTLY_DISPATCHED}
)

# States from which goods are shipped (CreateShipment).
SHIPPABLE = frozenset({S.PACKED, S.PARTLY_DISPATCHED})

# States in which an order may hold allocated stock: it does when its allocation_location is
# set (an ON_HOLD order only on a manual hold, which keeps its stock).
HOLDS_STOCK = frozenset({S.ON_HOLD, S.ACCEPTED, S.PICKING, S.PICKED, S.PACKED, S.PARTLY_DISPATCHED})


def allowed_next(state: OrderState) -> list[OrderState]:
    return sorted(NEXT[state], key=lambda s: list(OrderState).index(s))
