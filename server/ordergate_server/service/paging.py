"""The page rules every List RPC shares (AIP-158): a page size, and a page's bound in bytes."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from .errors import ErrorKind, FieldViolation, ServiceError


def page_size(requested: int, *, default: int, maximum: int) -> int:
    """The page size to use: `default` for 0, at most `maximum`; a negative one is refused."""
    if requested < 0:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "PAGE_SIZE_INVALID",
            "page_size must not be negative.",
            field_violations=[FieldViolation("page_size", "negative")],
        )
    return min(requested or default, maximum)


T = TypeVar("T")


def fitting(records: Sequence[T], fits: Callable[[T], bool] | None) -> int:
    """How many of `records`, from the first, go on the page. `fits` says whether a record
    still fits on the page being built (the API's PageBudget knows what a record costs as a
    message; None: all fit). Up to the first that does not, and never fewer than one: a
    record larger than any page is still listed, alone."""
    if fits is None:
        return len(records)
    for count, record in enumerate(records):
        if not fits(record) and count > 0:
            return count
    return len(records)
