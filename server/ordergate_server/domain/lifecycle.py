"""Order states and the guarded transitions between them.

ON_HOLD --correct/release--> ACCEPTED -> PICKING -> PICKED -> PACKED -> DISPATCHED -> DELIVERED
ON_HOLD or ACCEPTED --cancel--> CANCELLED (not once picking has started)
"""

from __future__ import annotations

from .model import OrderState

S = OrderState

# Where the warehouse may move an order next (corrections and releases are separate actions).
NEXT: dict[OrderState, frozenset[OrderState]] = {
    S.ON_HOLD: frozenset({S.CANCELLED}),
    S.ACCEPTED: frozenset({S.PICKING, S.CANCELLED}),
    S.PICKING: frozenset({S.PICKED}),
    S.PICKED: frozenset({S.PACKED}),
    S.PACKED: frozenset({S.DISPATCHED}),
    S.DISPATCHED: frozenset({S.DELIVERED}),
    S.DELIVERED: frozenset(),
    S.CANCELLED: frozenset(),
}

# States in which the order holds allocated stock.
HOLDS_STOCK = frozenset({S.ACCEPTED, S.PICKING, S.PICKED, S.PACKED})


def allowed_next(state: OrderState) -> list[OrderState]:
    return sorted(NEXT[state], key=lambda s: list(OrderState).index(s))
