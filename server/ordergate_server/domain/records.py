"""Orders as stored: the read model that the service builds, storage persists and the API shows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple

from .model import Delivery, HoldReason, OrderState


# NamedTuples: ten or more per order on the submit path, where a frozen dataclass cost
# several times as much to make (bench/README.md).
class LineRecord(NamedTuple):
    line_number: int
    submitted_code: str
    sku: str  # canonical SKU; "" when the submitted code did not resolve
    quantity: int  # 0 when the submitted quantity was not a positive whole number
    unit_price: Decimal | None = None


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
