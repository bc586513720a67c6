"""The byte bound of a list page: no page may outgrow what a client receives.

A page size bounds the count of a page, not its bytes: six orders with 50,000 hold reasons each
once made ListHeldOrders and ListOrders fail RESOURCE_EXHAUSTED at their default page size, for
every tenant's staff. The service asks `fits` of each record before it puts it on the page; the
budget makes the record's message there and then (kept for the answer, so nothing is converted
twice) and says no once the page would pass MAX_PAGE_BYTES. The page token then resumes at the
first record left off.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Generic, TypeVar

from google.protobuf.message import Message

R = TypeVar("R")
M = TypeVar("M", bound=Message)

# Half of a default gRPC client's 4 MiB receive limit: room for the largest single record (an
# order of a few thousand lines, listed alone when it is larger than this), and for the rest
# of the answer.
MAX_PAGE_BYTES = 2 * 1024 * 1024
# A repeated message field's own bytes per item: its tag and a length of up to four bytes.
_ITEM_OVERHEAD = 5


class PageBudget(Generic[R, M]):
    """Messages for one page, made as the service takes records (`fits` is its callback)."""

    def __init__(self, to_message: Callable[[R], M], max_bytes: int = MAX_PAGE_BYTES) -> None:
        self._to_message = to_message
        self._max_bytes = max_bytes
        self._bytes = 0
        self.messages: list[M] = []

    def fits(self, record: R) -> bool:
        message = self._to_message(record)
        size = message.ByteSize() + _ITEM_OVERHEAD
        if self.messages and self._bytes + size > self._max_bytes:
            return False
        self.messages.append(message)
        self._bytes += size
        return True
