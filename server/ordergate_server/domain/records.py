"""Orders as stored: the read model that the service builds, storage persists and the API shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from .lifecycle import HOLDS_STOCK
from .model import Delivery, HoldReason, OrderSource, OrderState, ShipmentState


# NamedTuples: ten or more per order on the submit path, where a frozen dataclass cost
# several times as much to make (bench/README.md).
class LineRecord(NamedTuple):
    line_number: int
    submitted_code: str
    sku: str  # canonical SKU; "" when the submitted code did not resolve
    quantity: int  # as ordered; 0 when the submitted quantity was not a positive whole number
    unit_price: Decimal | None = None
    cancelled: int = 0  # pieces cancelled since (CancelOrderLines, accept short)
    shipped: int = 0  # pieces in shipments so far

    @property
    def kept(self) -> int:
        """Pieces still ordered: what was not cancelled."""
        return self.quantity - self.cancelled

    @property
    def open(self) -> int:
        """Pieces still to ship: ordered, not cancelled, not shipped (what is allocated)."""
        return self.quantity - self.cancelled - self.shipped


@dataclass(frozen=True)
class EventRecord:
    id: str
    created_at: datetime
    actor: str
    type: str
    old_state: OrderState | None
    new_state: OrderState
    detail: str = ""


@dataclass(frozen=True)
class ShipmentRecord:
    id: str
    carrier: str
    tracking_number: str
    tracking_url: str
    state: ShipmentState
    without_tracking: bool
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None
    actor: str
    lines: tuple[tuple[int, int], ...]  # (the order line's line_number, pieces)


@dataclass(frozen=True)
class OrderRecord:
    id: str
    client: str
    client_order_id: str
    customer_account: str
    channel: str
    currency: str
    order_time: datetime | None
    created_at: datetime
    updated_at: datetime
    state: OrderState
    hold_reasons: tuple[HoldReason, ...]
    delivery: Delivery
    lines: tuple[LineRecord, ...]
    notes: str
    allocation_location: str
    problem_submission: bool
    content_sha256: str
    events: tuple[EventRecord, ...] = field(default=())
    source: OrderSource = OrderSource.API
    entered_by: str = ""  # who entered a MANUAL order
    stock_hold: bool = False  # held for stock alone: re-checked when stock rises
    held_from: OrderState | None = None  # a manual hold's way back
    shipments: tuple[ShipmentRecord, ...] = field(default=())

    @property
    def holds_stock(self) -> bool:
        """Whether stock is allocated to it: accepted and not all shipped yet, or on a manual
        hold, which keeps its stock (the location stays named after dispatch)."""
        return bool(self.allocation_location) and self.state in HOLDS_STOCK
