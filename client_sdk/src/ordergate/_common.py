"""What the sync and async clients share: argument handling, request building, results."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import grpc

from ._config import ConnectionConfig
from ._errors import FieldViolation, OrdergateError, error_for
from ._request_id import derive_request_id, identity_of_key
from ._retry import NO_RETRY, RetryPolicy, _Default
from .v1 import order_pb2, order_service_pb2

OrderDocument: TypeAlias = "bytes | str | os.PathLike[str]"
"""An order: bytes as they are, str as XML text (sent as UTF-8), a Path to read.

A str is always XML, never a file name: wrap a file name in pathlib.Path."""

Metadata: TypeAlias = "tuple[tuple[str, str], ...]"


def payload_of(order: bytes | str | os.PathLike[str]) -> bytes:
    if isinstance(order, bytes):
        return order
    if isinstance(order, str):
        return order.encode("utf-8")
    return Path(order).read_bytes()


@dataclass(frozen=True)
class BulkResult:
    """The outcome of one order of a bulk submission: a response, or the error that refused it."""

    request_id: str
    response: order_service_pb2.SubmitOrderResponse | None
    error: OrdergateError | None

    @property
    def order(self) -> order_pb2.Order | None:
        return self.response.order if self.response is not None else None


class _ClientBase:
    def __init__(
        self,
        config: ConnectionConfig | None,
        *,
        target: str | None,
        api_key: str | None,
        timeout: float | None,
        retry: RetryPolicy | None,
        client_identity: str | None,
    ) -> None:
        config = config or ConnectionConfig()
        if target is not None or api_key is not None:
            config = ConnectionConfig(
                **{
                    **config.__dict__,
                    **({"target": target} if target is not None else {}),
                    **({"api_key": api_key} if api_key is not None else {}),
                }
            )
        self.config = config
        self._timeout = timeout
        self._retry = retry or NO_RETRY
        self._identity = client_identity or identity_of_key(config.api_key) or config.target

    def _metadata(self, extra: Metadata) -> Metadata:
        if self.config.api_key:
            return (("authorization", f"Bearer {self.config.api_key}"), *extra)
        return tuple(extra)

    def _timeout_for(self, timeout: float | _Default | None) -> float | None:
        return self._timeout if isinstance(timeout, _Default) else timeout

    def _policy(self, retry: RetryPolicy | _Default | None, *, safe: bool) -> RetryPolicy:
        if not safe or retry is None:
            return NO_RETRY
        return self._retry if isinstance(retry, _Default) else retry

    def _submit_request(
        self,
        order: OrderDocument,
        request_id: str | None,
        validate_only: bool,
        ubl_order_response: bool = False,
        on_behalf_of_client: str = "",
    ) -> order_service_pb2.SubmitOrderRequest:
        payload = payload_of(order)
        identity = (
            f"{self._identity}/{on_behalf_of_client}" if on_behalf_of_client else self._identity
        )
        return order_service_pb2.SubmitOrderRequest(
            request_id=request_id or derive_request_id(identity, payload),
            order_xml=payload,
            validate_only=validate_only,
            ubl_order_response=ubl_order_response,
            on_behalf_of_client=on_behalf_of_client,
        )


def bulk_result(reply: order_service_pb2.SubmitOrdersResponse) -> BulkResult:
    if reply.WhichOneof("result") == "error":
        item = reply.error
        violations = tuple(
            FieldViolation(*(part.strip() for part in v.split(":", 1)))
            if ":" in v
            else FieldViolation(v, "")
            for v in item.field_violations
        )
        code = (
            grpc.StatusCode[item.code]
            if item.code in grpc.StatusCode.__members__
            else grpc.StatusCode.UNKNOWN
        )
        error = error_for(
            code,
            item.message,
            reason=item.reason,
            metadata=dict(item.metadata),
            field_violations=violations,
        )
        return BulkResult(reply.request_id, None, error)
    return BulkResult(reply.request_id, reply.response, None)


def enum_value(enum: Any, prefix: str, value: str | int | None) -> int:
    """Accept NAME, PREFIX_NAME or the enum number (None or "": 0, unspecified)."""
    if value is None or value == "":
        return 0
    if isinstance(value, int):
        return value
    name = value.upper()
    return int(enum.Value(name if name.startswith(prefix) else prefix + name))


def source_value(source: str | int | None) -> int:
    """Accept MANUAL, ORDER_SOURCE_MANUAL or the enum number."""
    return enum_value(order_pb2.OrderSource, "ORDER_SOURCE_", source)


def shipment_state_value(state: str | int | None) -> int:
    """Accept IN_TRANSIT, SHIPMENT_STATE_IN_TRANSIT or the enum number."""
    return enum_value(order_pb2.ShipmentState, "SHIPMENT_STATE_", state)


def state_value(state: str | int | None) -> int:
    """Accept ON_HOLD, ORDER_STATE_ON_HOLD or the enum number."""
    if state is None or state == "":
        return order_pb2.ORDER_STATE_UNSPECIFIED
    if isinstance(state, int):
        return state
    name = state.upper()
    return order_pb2.OrderState.Value(
        name if name.startswith("ORDER_STATE_") else f"ORDER_STATE_{name}"
    )
