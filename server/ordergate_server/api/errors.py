"""ServiceError -> google.rpc.Status (AIP-193): canonical code, ErrorInfo, BadRequest and
RetryInfo details."""

from __future__ import annotations

from datetime import timedelta

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from ordergate.v1 import order_service_pb2

from ..service.errors import ErrorKind, ServiceError

ERROR_DOMAIN = "ordergate"

_CODES = {kind: getattr(code_pb2, kind.value) for kind in ErrorKind}


def to_status(error: ServiceError) -> grpc.Status:
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
    return rpc_status.to_status(status)


def internal_status() -> grpc.Status:
    """For an unexpected failure: nothing about the cause leaks to the caller (it is logged)."""
    return to_status(ServiceError(ErrorKind.INTERNAL, "INTERNAL", "Internal error; it is logged."))


def item_error(error: ServiceError) -> order_service_pb2.ItemError:
    """The same refusal, as one item's result inside a stream."""
    return order_service_pb2.ItemError(
        code=error.kind.value,
        reason=error.reason,
        message=error.message,
        metadata=error.metadata,
        field_violations=[f"{v.field}: {v.description}" for v in error.field_violations],
    )
