"""ServiceError -> google.rpc.Status (AIP-193): canonical code, ErrorInfo, BadRequest and
RetryInfo details, every one bounded.

An error travels in the call's trailers: its message twice (grpc-message, percent-encoded, and
inside grpc-status-details-bin, base64), its details once. A default gRPC client takes 8 KB of
them; past that it gets no status at all, and a 790 KB error once cost a worker 17.5 MB that
was never given back. So every error is cut to fit, whatever a service put in it: the message to
MAX_MESSAGE_BYTES, at most MAX_METADATA metadata entries and MAX_VIOLATIONS field violations
(the last one counting those left out), each value cut to its own byte limit. The worst case
comes to about 6.7 KB of trailers (tests/unit/test_errors.py measures it)."""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ordergate.v1 import order_service_pb2

from ..service.errors import ErrorKind, FieldViolation, ServiceError

ERROR_DOMAIN = "ordergate"

_CODES = {kind: getattr(code_pb2, kind.value) for kind in ErrorKind}

MAX_MESSAGE_BYTES = 400
MAX_METADATA = 8
MAX_METADATA_KEY_BYTES = 40
MAX_METADATA_VALUE_BYTES = 100
MAX_VIOLATIONS = 10
MAX_FIELD_BYTES = 80
MAX_DESCRIPTION_BYTES = 160


def bounded(error: ServiceError) -> ServiceError:
    """`error` cut to the limits above (the same error when it is within them)."""
    metadata = dict(list(error.metadata.items())[:MAX_METADATA])
    violations = error.field_violations
    if len(violations) > MAX_VIOLATIONS:
        left_out = len(violations) - (MAX_VIOLATIONS - 1)
        violations = [
            *violations[: MAX_VIOLATIONS - 1],
            FieldViolation("…", f"{left_out:,} more not listed ({len(violations):,} in all)"),
        ]
    return ServiceError(
        error.kind,
        error.reason,
        _cut(error.message, MAX_MESSAGE_BYTES),
        metadata={
            _cut(key, MAX_METADATA_KEY_BYTES): _cut(value, MAX_METADATA_VALUE_BYTES)
            for key, value in metadata.items()
        },
        field_violations=[
            FieldViolation(
                _cut(v.field, MAX_FIELD_BYTES), _cut(v.description, MAX_DESCRIPTION_BYTES)
            )
            for v in violations
        ],
        retry_after_seconds=error.retry_after_seconds,
    )


def _cut(text: str, limit: int) -> str:
    """`text` in at most `limit` bytes of UTF-8, ending in "…" when cut."""
    encoded = text.encode()
    if len(encoded) <= limit:
        return text
    return encoded[: limit - 3].decode(errors="ignore") + "…"


def to_status(error: ServiceError) -> grpc.Status:
    return rpc_status.to_status(to_status_proto(error))


def to_status_proto(error: ServiceError) -> status_pb2.Status:
    """`error`, bounded, as the google.rpc.Status every transport answers with."""
    error = bounded(error)
    status = status_pb2.Status(code=_CODES[error.kind], message=error.message)
    details: list[object] = [
        error_details_pb2.ErrorInfo(
            reason=error.reason, domain=ERROR_DOMAIN, metadata=error.metadata
        )
    ]
    if error.field_violations:
        details.append(
            error_details_pb2.BadRequest(
                field_violations=[
                    error_details_pb2.BadRequest.FieldViolation(
                        field=v.field, description=v.description
                    )
                    for v in error.field_violations
                ]
            )
        )
    if error.retry_after_seconds is not None:
        delay = duration_pb2.Duration()
        delay.FromTimedelta(timedelta(seconds=error.retry_after_seconds))
        details.append(error_details_pb2.RetryInfo(retry_delay=delay))
    for detail in details:
        packed = any_pb2.Any()
        packed.Pack(detail)  # type: ignore[arg-type]
        status.details.append(packed)
    return status


def internal_status() -> grpc.Status:
    """For an unexpected failure: nothing about the cause leaks to the caller (it is logged)."""
    return to_status(ServiceError(ErrorKind.INTERNAL, "INTERNAL", "Internal error; it is logged."))


def item_error(error: ServiceError) -> order_service_pb2.ItemError:
    """The same refusal, as one item's result inside a stream (bounded alike)."""
    error = bounded(error)
    return order_service_pb2.ItemError(
        code=error.kind.value,
        reason=error.reason,
        message=error.message,
        metadata=error.metadata,
        field_violations=[f"{v.field}: {v.description}" for v in error.field_violations],
    )
