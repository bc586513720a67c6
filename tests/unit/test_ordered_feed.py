"""Log entries are released strictly in id order; a missing id holds back later ones briefly."""

from __future__ import annotations

from datetime import UTC, datetime

from ordergate_server.service.ordered_feed import GAP_WAIT_SECONDS, InOrder
from ordergate_server.storage.stock_log import StockChange


def change(seq: int) -> StockChange:
    return StockChange(datetime.now(UTC), "S", "L", "ALLOCATION", 0, 1, 1, 1, "t", seq=seq)


def seqs(changes: list[StockChange]) -> list[int]:
    return [c.seq for c in changes]


def test_in_order_changes_flow_straight_through() -> None:
    order: InOrder[StockChange] = InOrder(cursor=10)
    assert seqs(order.ready([change(11), change(12)], now=0.0)) == [11, 12]
    assert order.cursor == 12


def test_a_late_commit_fills_its_gap_and_nothing_is_lost() -> None:
    order: InOrder[StockChange] = InOrder(cursor=10)
    assert seqs(order.ready([change(12)], now=0.0)) == []  # 11 is still committing
    assert seqs(order.ready([change(11), change(12)], now=0.1)) == [11, 12]


def test_a_gap_that_never_fills_is_skipped_after_the_wait() -> None:
    order: InOrder[StockChange] = InOrder(cursor=10)
    assert seqs(order.ready([change(12)], now=0.0)) == []
    assert seqs(order.ready([change(12)], now=GAP_WAIT_SECONDS / 2)) == []
    assert seqs(order.ready([change(12)], now=GAP_WAIT_SECONDS + 0.01)) == [12]  # 11 rolled back


def test_changes_already_delivered_are_not_repeated() -> None:
    order: InOrder[StockChange] = InOrder(cursor=10)
    order.ready([change(11)], now=0.0)
    assert seqs(order.ready([change(11), change(12)], now=0.1)) == [12]
