"""Delivering a log (stock changes, order events) strictly in id order, without losing any.

Ids come from the database in the order transactions *took* them, not the order they
committed: on PostgreSQL, id 41 may become visible after id 42. A watcher that moved its cursor
past 41 on seeing 42 would miss 41 for ever. So entries are released strictly in id order: a
missing id holds back the ones after it until it appears, or until GAP_WAIT_SECONDS have passed
(then it belonged to a transaction that rolled back, and is skipped).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

GAP_WAIT_SECONDS = 0.5


class Entry(Protocol):
    @property
    def seq(self) -> int: ...


E = TypeVar("E", bound=Entry)


@dataclass
class InOrder(Generic[E]):
    """Releases changes strictly in id order, waiting a little for ids that are missing."""

    cursor: int
    held: dict[int, E] = field(default_factory=dict)
    gap_since: float | None = None

    def ready(self, changes: Sequence[E], now: float) -> list[E]:
        for change in changes:
            if change.seq > self.cursor:
                self.held[change.seq] = change
        released = []
        while self.held:
            following = self.cursor + 1
            if following in self.held:
                released.append(self.held.pop(following))
                self.cursor = following
                self.gap_since = None
                continue
            if self.gap_since is None:
                self.gap_since = now
            if now - self.gap_since < GAP_WAIT_SECONDS:
                break
            self.cursor = min(self.held) - 1  # the missing ids were rolled back
            self.gap_since = None
        return released
