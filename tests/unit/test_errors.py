"""Every error fits a default gRPC client's trailers, whatever a service put in it."""

from __future__ import annotations

import base64

from ordergate_server.api import errors
from ordergate_server.service.errors import ErrorKind, FieldViolation, ServiceError

# What a default client takes in metadata (grpc.max_metadata_size).
DEFAULT_CLIENT_METADATA_BYTES = 8 * 1024


def _trailer_bytes(error: ServiceError) -> int:
    """The bytes the error's trailers take on the wire: grpc-status, grpc-message (UTF-8,
    percent-encoded outside printable ASCII) and grpc-status-details-bin (base64)."""
    status = errors.to_status(error)
    message = status.details.encode()
    percent_encoded = sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in message)
    [(name, details)] = [(k, v) for k, v in status.trailing_metadata if k.endswith("-bin")]
    assert isinstance(details, bytes)
    return (
        len("grpc-status")
        + 2
        + len("grpc-message")
        + percent_encoded
        + len(name)
        + len(base64.b64encode(details))
    )


def test_the_largest_error_a_service_can_make_fits_a_default_client() -> None:
    huge = "\U0001f4e6" * 100_000  # four bytes of UTF-8 each, nine when percent-encoded
    error = ServiceError(
        ErrorKind.INVALID_ARGUMENT,
        "LOCATION_UNKNOWN",
        huge,
        metadata={f"{huge}{i}": huge for i in range(1_000)},
        field_violations=[FieldViolation(huge, huge) for _ in range(100_000)],
        retry_after_seconds=1.0,
    )
    assert _trailer_bytes(error) < DEFAULT_CLIENT_METADATA_BYTES


def test_a_bounded_error_says_what_it_left_out() -> None:
    error = errors.bounded(
        ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "TOO_MANY",
            "x" * 5_000,
            field_violations=[FieldViolation(f"codes[{i}]", "unknown") for i in range(250)],
        )
    )
    assert len(error.message.encode()) <= errors.MAX_MESSAGE_BYTES
    assert error.message.endswith("…")
    assert len(error.field_violations) == errors.MAX_VIOLATIONS
    assert error.field_violations[0] == FieldViolation("codes[0]", "unknown")
    assert error.field_violations[-1] == FieldViolation("…", "241 more not listed (250 in all)")


def test_an_error_within_the_bounds_is_unchanged() -> None:
    error = ServiceError(
        ErrorKind.NOT_FOUND,
        "ORDER_NOT_FOUND",
        "No order 42 is visible to this client.",
        metadata={"order": "42"},
        field_violations=[FieldViolation("id", "unknown")],
    )
    assert errors.bounded(error) == error
