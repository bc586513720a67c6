"""The SDK's exceptions: one class per gRPC status code the server uses, all under OrdergateError.

    OrdergateError
    ├── InvalidArgumentError      INVALID_ARGUMENT   bad or reused request_id, bad page token
    ├── NotFoundError             NOT_FOUND          no such order (or not yours)
    ├── AlreadyExistsError        ALREADY_EXISTS     order id already accepted with other content
    ├── PermissionDeniedError     PERMISSION_DENIED  your role may not call this
    ├── UnauthenticatedError      UNAUTHENTICATED    missing, malformed or revoked API key
    ├── ResourceExhaustedError    RESOURCE_EXHAUSTED payload too large, rate limited
    ├── FailedPreconditionError   FAILED_PRECONDITION state does not allow it
    ├── UnavailableError          UNAVAILABLE        server or database unreachable (retried)
    ├── DeadlineExceededError     DEADLINE_EXCEEDED  the timeout passed
    └── InternalError             INTERNAL / UNKNOWN / anything else

Every error carries the status `code`, the server's stable `reason` (google.rpc.ErrorInfo),
its `metadata`, and `field_violations` (google.rpc.BadRequest) naming what to fix.
An order on hold is not an error: it is a normal result with `state` ON_HOLD.
"""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status


@dataclass(frozen=True)
class FieldViolation:
    field: str
    description: str


class OrdergateError(Exception):
    """A call the server refused or could not complete."""

    def __init__(
        self,
        code: grpc.StatusCode,
        message: str,
        *,
        reason: str = "",
        metadata: dict[str, str] | None = None,
        field_violations: tuple[FieldViolation, ...] = (),
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"{code.name}: {reason + ': ' if reason else ''}{message}")
        self.code = code
        self.message = message
        self.reason = reason
        self.metadata = metadata or {}
        self.field_violations = field_violations
        # Seconds the server advised waiting before trying again (google.rpc.RetryInfo): a
        # busy server, a rate limit. The SDK's retries wait at least this long.
        self.retry_after = retry_after


class InvalidArgumentError(OrdergateError):
    pass


class NotFoundError(OrdergateError):
    pass


class AlreadyExistsError(OrdergateError):
    pass


class PermissionDeniedError(OrdergateError):
    pass


class UnauthenticatedError(OrdergateError):
    pass


class ResourceExhaustedError(OrdergateError):
    pass


class FailedPreconditionError(OrdergateError):
    pass


class UnavailableError(OrdergateError):
    pass


class DeadlineExceededError(OrdergateError):
    pass


class InternalError(OrdergateError):
    pass


_BY_CODE: dict[grpc.StatusCode, type[OrdergateError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgumentError,
    grpc.StatusCode.NOT_FOUND: NotFoundError,
    grpc.StatusCode.ALREADY_EXISTS: AlreadyExistsError,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDeniedError,
    grpc.StatusCode.UNAUTHENTICATED: UnauthenticatedError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhaustedError,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPreconditionError,
    grpc.StatusCode.UNAVAILABLE: UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceededError,
}


def error_for(
    code: grpc.StatusCode,
    message: str,
    *,
    reason: str = "",
    metadata: dict[str, str] | None = None,
    field_violations: tuple[FieldViolation, ...] = (),
    retry_after: float | None = None,
) -> OrdergateError:
    kind = _BY_CODE.get(code, InternalError)
    return kind(
        code,
        message,
        reason=reason,
        metadata=metadata,
        field_violations=field_violations,
        retry_after=retry_after,
    )


def from_rpc_error(error: grpc.RpcError) -> OrdergateError:
    """Translate a failed gRPC call, reading google.rpc.Status details when the server sent them."""
    code: grpc.StatusCode = error.code()
    message: str = error.details() or ""
    reason, metadata = "", {}
    violations: tuple[FieldViolation, ...] = ()
    retry_after: float | None = None
    status: status_pb2.Status | None = None
    try:
        status = rpc_status.from_call(error)  # type: ignore[arg-type]
    except ValueError:  # details present but inconsistent with the call's status
        status = None
    if status is not None:
        message = status.message or message
        for detail in status.details:
            if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                info = error_details_pb2.ErrorInfo()
                detail.Unpack(info)
                reason, metadata = info.reason, dict(info.metadata)
            elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
                bad = error_details_pb2.BadRequest()
                detail.Unpack(bad)
                violations = tuple(
                    FieldViolation(v.field, v.description) for v in bad.field_violations
                )
            elif detail.Is(error_details_pb2.RetryInfo.DESCRIPTOR):
                retry = error_details_pb2.RetryInfo()
                detail.Unpack(retry)
                retry_after = retry.retry_delay.ToTimedelta().total_seconds()
    return error_for(
        code,
        message,
        reason=reason,
        metadata=metadata,
        field_violations=violations,
        retry_after=retry_after,
    )
