"""Webhooks: the event types a client's endpoints receive, which order events they come from,
and when a failed delivery is tried again (docs/webhooks.md)."""

from __future__ import annotations

import ipaddress
import random
import re
from datetime import timedelta

from .model import OrderState

# Every event type, with what it says. An endpoint that lists none receives all of them.
EVENT_TYPES: dict[str, str] = {
    "order.accepted": "an order was accepted: stock allocated, ready to pick",
    "order.held": "an order went on hold (on receipt, by staff, or left short of stock)",
    "order.released": "staff released a held order",
    "order.corrected": "a held order was corrected and judged again",
    "order.cancelled": "an order was cancelled",
    "order.lines_cancelled": "some of an order's lines were cancelled or shortened",
    "order.changed": "the buyer changed an order's lines (a UBL OrderChange)",
    "order.shipped": "(part of) an order was handed to a carrier: carrier and tracking in it",
    "order.delivered": "an order was delivered",
    "stock.changed": "a product's stock changed (at most one event per product and interval)",
    "stock.low": "a product's available stock at a location fell to the low-stock level",
    "stock.oversold": "a location has less stock than its accepted orders need",
    "stock.divergence": "a stock reconciliation found a count off ours beyond the threshold",
    "return.authorized": "a return (RMA) of an order's shipped goods was authorized",
    "return.received": "a return's goods arrived, into quarantine",
    "return.triaged": "a return's pieces were triaged (restocked, reworked or disposed of)",
    "return.completed": "every piece of a return was restocked or disposed of; credit issued",
}


def order_event_type(event: str, new_state: OrderState) -> str | None:
    """The webhook event an order event is, if any (docs/operations.md lists order events)."""
    if event in ("SUBMITTED", "ACCEPTED", "ACCEPTED_SHORT"):
        return "order.accepted" if new_state is OrderState.ACCEPTED else "order.held"
    return _BY_ORDER_EVENT.get(event)


_BY_ORDER_EVENT = {
    "RESUBMITTED": "order.corrected",
    "RELEASED": "order.released",
    "HELD": "order.held",
    "STOCK_SHORT": "order.held",
    "CANCELLED": "order.cancelled",
    "LINES_CANCELLED": "order.lines_cancelled",
    "CHANGED": "order.changed",
    "PARTLY_DISPATCHED": "order.shipped",
    "DISPATCHED": "order.shipped",
    "DELIVERED": "order.delivered",
    "RETURN_AUTHORIZED": "return.authorized",
    "RETURN_RECEIVED": "return.received",
    "RETURN_TRIAGED": "return.triaged",
    "RETURN_COMPLETED": "return.completed",
}


def wants(event_types: list[str], event_type: str) -> bool:
    """Whether an endpoint subscribed to `event_types` (none: all) receives `event_type`."""
    return not event_types or event_type in event_types


# The Standard Webhooks schedule (immediately, then 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h),
# carried on to about three days (ten attempts over 75 hours): each entry is the wait before the
# next attempt.
DEFAULT_RETRY_SCHEDULE = "5s,5m,30m,2h,5h,10h,10h,24h,24h"
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_schedule(text: str) -> list[timedelta]:
    """ "5s,5m,2h" as waits; ValueError for anything else."""
    waits = []
    for part in text.split(","):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)([smhd])\s*", part)
        if match is None:
            raise ValueError(f"{part.strip()!r} is not a wait such as 5s, 30m, 2h or 1d")
        waits.append(timedelta(seconds=float(match[1]) * _UNITS[match[2]]))
    return waits


def next_wait(
    schedule: list[timedelta], attempts_made: int, rng: random.Random
) -> timedelta | None:
    """The wait before the next attempt after `attempts_made` failed ones; None once the
    schedule is spent. Each wait is jittered by ±20%, so that an endpoint coming back after an
    outage is not met by every retry at the same instant."""
    if attempts_made > len(schedule):
        return None
    return schedule[attempts_made - 1] * rng.uniform(0.8, 1.2)


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> list[Network]:
    """ORDERGATE_WEBHOOK_ALLOWED_NETWORKS: comma-separated CIDRs; ValueError for any other."""
    return [
        ipaddress.ip_network(part.strip(), strict=False) for part in text.split(",") if part.strip()
    ]
