"""Allocation: pick one location that can serve a whole order, or say what is short.

Available = on hand - allocated. An order is allocated from a single location (no split), the
first one in the operator's priority order that has every SKU in the needed quantity.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

from .model import HoldCode, HoldReason


class DemandLine(NamedTuple):  # one per line and component of every order: cheap to make
    """One order line after SKU resolution: position in the order, line number, SKU, quantity."""

    position: int  # the line's index in the order (field paths: lines[position])
    line_number: int
    sku: str
    quantity: int


def total_demand(lines: Sequence[DemandLine]) -> dict[str, int]:
    """Quantity needed per SKU (lines naming the same SKU add up), in sorted SKU order."""
    demand: dict[str, int] = {}
    for line in lines:
        demand[line.sku] = demand.get(line.sku, 0) + line.quantity
    return dict(sorted(demand.items()))


def choose_location(
    demand: Mapping[str, int],
    available: Mapping[tuple[str, str], int],
    locations: Sequence[str],
) -> str | None:
    """The first location (in priority order) where every SKU has its demand available."""
    for location in locations:
        if all(available.get((sku, location), 0) >= qty for sku, qty in demand.items()):
            return location
    return None


def shortfall_reasons(
    lines: Sequence[DemandLine],
    available: Mapping[tuple[str, str], int],
    locations: Sequence[str],
) -> list[HoldReason]:
    """Explain why no location can take the order: per line where a SKU is short everywhere,
    or one order-level reason when each SKU exists somewhere but no location has them all."""
    demand = total_demand(lines)
    reasons = []
    short_skus = set()
    for line in lines:
        best = max((available.get((line.sku, loc), 0) for loc in locations), default=0)
        if best < demand[line.sku]:
            short_skus.add(line.sku)
            reasons.append(
                HoldReason(
                    HoldCode.INSUFFICIENT_STOCK,
                    f"lines[{line.position}].quantity",
                    f"Line {line.line_number}: SKU {line.sku} needs {demand[line.sku]} in total, "
                    f"at most {max(best, 0)} available at one location "
                    f"(short by {demand[line.sku] - max(best, 0)}).",
                )
            )
    if not short_skus:
        reasons.append(
            HoldReason(
                HoldCode.INSUFFICIENT_STOCK,
                "lines",
                "Every SKU is in stock somewhere, but no single location has all of them; "
                "orders are not split across locations.",
            )
        )
    return reasons


class ShortLine(NamedTuple):
    """A line to accept short: its position, its stocked parts (sku, pieces per piece of the
    line: a bundle's components, or the SKU itself once), and the pieces wanted."""

    position: int
    parts: list[tuple[str, int]]
    wanted: int


def most_at_one_location(
    lines: Sequence[ShortLine],
    available: Mapping[tuple[str, str], int],
    locations: Sequence[str],
) -> tuple[str, dict[int, int]] | None:
    """Where the most pieces of `lines` can be served, and how many of each line (by
    position): each line, in order, takes what the lines before it left. The first location in
    priority order wins a tie; None when no location has any piece."""
    best: tuple[str, dict[int, int]] | None = None
    best_total = 0
    for location in locations:
        left = {sku: available.get((sku, location), 0) for line in lines for sku, _ in line.parts}
        keep: dict[int, int] = {}
        for line in lines:
            can = min((max(left[sku], 0) // per for sku, per in line.parts), default=0)
            keep[line.position] = taken = max(0, min(line.wanted, can))
            for sku, per in line.parts:
                left[sku] -= taken * per
        total = sum(keep.values())
        if total > best_total:
            best, best_total = (location, keep), total
    return best
