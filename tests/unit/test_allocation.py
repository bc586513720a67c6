"""Choosing one location for a whole order, and explaining a shortfall."""

from __future__ import annotations

from ordergate_server.domain.allocation import (
    DemandLine,
    choose_location,
    shortfall_reasons,
    total_demand,
)

LOCATIONS = ["WH", "STORE"]


def test_lines_for_the_same_sku_add_up() -> None:
    lines = [DemandLine(0, 1, "B", 2), DemandLine(1, 2, "A", 1), DemandLine(2, 3, "B", 3)]
    assert total_demand(lines) == {"A": 1, "B": 5}


def test_first_location_in_priority_order_that_has_everything() -> None:
    available = {("A", "WH"): 5, ("B", "WH"): 1, ("A", "STORE"): 5, ("B", "STORE"): 9}
    assert choose_location({"A": 2, "B": 1}, available, LOCATIONS) == "WH"
    assert choose_location({"A": 2, "B": 2}, available, LOCATIONS) == "STORE"
    assert choose_location({"A": 6}, available, LOCATIONS) is None


def test_negative_availability_counts_as_none() -> None:
    assert choose_location({"A": 1}, {("A", "WH"): -3}, LOCATIONS) is None


def test_shortfall_is_named_per_line() -> None:
    lines = [DemandLine(0, 10, "A", 4), DemandLine(1, 20, "B", 1)]
    [reason] = shortfall_reasons(lines, {("A", "WH"): 3, ("B", "WH"): 1}, LOCATIONS)
    assert (reason.code.value, reason.field) == ("INSUFFICIENT_STOCK", "lines[0].quantity")
    assert "Line 10" in reason.message
    assert "short by 1" in reason.message


def test_split_only_shortfall_is_one_order_level_reason() -> None:
    lines = [DemandLine(0, 1, "A", 1), DemandLine(1, 2, "B", 1)]
    [reason] = shortfall_reasons(lines, {("A", "WH"): 1, ("B", "STORE"): 1}, LOCATIONS)
    assert reason.field == "lines"
    assert "no single location" in reason.message
