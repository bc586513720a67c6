"""Why a request cannot be taken at all. The API layer maps each to a google.rpc.Status.

Business outcomes (an order on hold) are never errors; these are for requests that are refused.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class ErrorKind(enum.Enum):
    """The canonical gRPC code family an error maps to (kept free of grpc imports)."""

    INVALID_ARGUMENT = "INVALID_ARGUMENT"
    NOT_FOUND = "NOT_FOUND"
    ALREADY_EXISTS = "ALREADY_EXISTS"
    RESOURCE_EXHAUSTED = "RESOURCE_EXHAUSTED"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    PERMISSION_DENIED = "PERMISSION_DENIED"
    FAILED_PRECONDITION = "FAILED_PRECONDITION"
    UNAVAILABLE = "UNAVAILABLE"
    UNIMPLEMENTED = "UNIMPLEMENTED"
    INTERNAL = "INTERNAL"


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


@dataclass
class ServiceError(Exception):
    """A refused request: kind (the status code), a stable reason, a message and what to fix."""

    kind: ErrorKind
    reason: str
    message: str
    metadata: dict[str, str] = field(default_factory=dict)
    field_violations: list[FieldViolation] = field(default_factory=list)
    # When to try again, for a refusal that passes with time (a rate limit): a RetryInfo detail.
    retry_after_seconds: float | None = None

    def __str__(self) -> str:
        return f"{self.reason}: {self.message}"
