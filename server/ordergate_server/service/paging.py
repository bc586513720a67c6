"""The page size rule every List RPC shares (AIP-158)."""

from __future__ import annotations

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
