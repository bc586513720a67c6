"""Every RPC over HTTP: the Connect protocol (JSON and binary) and gRPC-Web, served by the same
servicers as gRPC, through the same call handling (api/calls.py).

connectrpc (the Connect project's Python runtime) reads and writes the protocol; its generated
code (connect/, scripts/gen_protos.py) maps each path to a method of a service object. The
service objects here are adapters: each method calls the gRPC servicer's method of the same
name, which knows nothing of its transport (a servicer never touches its context). Around them:

- `OutcomeStart`: the call's record, and when it ends, its outcome (metrics, access log) under
  the gRPC code name of the Connect code the client got;
- `Gate`: before the body is read, the in-flight cap, `Authorization: Bearer`, the role and the
  key's rate and stream limits, exactly as on gRPC;
- `Messages`: each request within the contract's field limits (request_checks.py), and any
  refusal as a Connect error carrying the same google.rpc details (ErrorInfo, BadRequest,
  RetryInfo) as on gRPC.

Bidirectional streams (SubmitOrders) need HTTP/2 end to end, which this listener does not speak:
they are gRPC's (or SubmitOrder one order at a time).
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from connectrpc.code import Code
from connectrpc.errors import ConnectError, ErrorDetail
from connectrpc.method import StreamType
from connectrpc.request import RequestContext
from protobuf.wkt import Any as ConnectAny

from ...service.auth import Authenticator
from ...service.errors import ErrorKind, ServiceError
from ...service.rate_limits import KeyLimits
from .. import calls, errors
from ..request_checks import check_request

_CONNECT_CODES = {kind: Code[kind.value] for kind in ErrorKind}


def grpc_code_name(code: Code) -> str:
    """The gRPC name of a Connect code (they differ only in CANCELED's spelling)."""
    return "CANCELLED" if code is Code.CANCELED else code.name


def connect_error(error: ServiceError) -> ConnectError:
    """A refusal as a Connect error with the google.rpc details the gRPC answer carries."""
    status = errors.to_status_proto(error)
    details = [
        ErrorDetail(ConnectAny(type_url=detail.type_url, value=detail.value))
        for detail in status.details
    ]
    return ConnectError(_CONNECT_CODES[error.kind], status.message, details)


def method_path(ctx: RequestContext[Any, Any]) -> str:
    return f"/{ctx.method.service_name}/{ctx.method.name}"


def _peer_ip(client_address: str | None) -> str:
    host = (client_address or "").rpartition(":")[0]
    return host.strip("[]")


class OutcomeStart:
    """Outermost: the call's record; its outcome once it ended, however it ended."""

    def __init__(self, outcomes: calls.Outcomes) -> None:
        self._outcomes = outcomes

    async def on_start(self, ctx: RequestContext[Any, Any]) -> calls.CallRecord:
        return calls.start_call_record(time.perf_counter(), via="connect")

    async def on_end(
        self, record: calls.CallRecord, ctx: RequestContext[Any, Any], error: Exception | None
    ) -> None:
        if error is None:
            code = "OK"
        elif isinstance(error, ConnectError):
            code = grpc_code_name(error.code)
        else:  # connectrpc answers anything else as UNKNOWN
            code = "UNKNOWN"
        duration = time.perf_counter() - record.started
        self._outcomes.record(method_path(ctx), code, record, duration, ctx.client_address or "")


@dataclass
class _Held:
    """What a call took from the gate, given back when it ends."""

    slot: bool = False
    stream_key: str = ""


class Gate:
    """Before the body is read: the in-flight cap, the caller, its role, its key's limits."""

    def __init__(
        self, authenticator: Authenticator, limits: KeyLimits, in_flight: calls.InFlight
    ) -> None:
        self._authenticator = authenticator
        self._limits = limits
        self._in_flight = in_flight

    async def on_start(self, ctx: RequestContext[Any, Any]) -> _Held:
        held = _Held()
        method = method_path(ctx)
        stream = ctx.method.stream_type
        try:
            if stream is not StreamType.SERVER_STREAM:  # watches are not counted
                self._in_flight.enter()
                held.slot = True
            principal = calls.authenticate(
                self._authenticator,
                ctx.request_headers.get("authorization", ""),
                _peer_ip(ctx.client_address),
            )
            calls.check_role(principal, method)
            calls.set_principal(principal)
            self._limits.take(principal.key_id)
            if stream is not StreamType.UNARY:
                self._limits.open_stream(principal.key_id)
                held.stream_key = principal.key_id
        except ServiceError as refused:
            self._give_back(held)
            calls.note(reason=refused.reason)
            raise connect_error(refused) from None
        return held

    async def on_end(
        self, held: _Held, ctx: RequestContext[Any, Any], error: Exception | None
    ) -> None:
        self._give_back(held)

    def _give_back(self, held: _Held) -> None:
        if held.slot:
            self._in_flight.leave()
        if held.stream_key:
            self._limits.close_stream(held.stream_key)


class Messages:
    """Around the servicer: the request's field limits, and refusals as Connect errors."""

    async def intercept_unary(
        self,
        call_next: Callable[[Any, RequestContext[Any, Any]], Awaitable[Any]],
        request: Any,
        ctx: RequestContext[Any, Any],
    ) -> Any:
        try:
            check_request(request)
            calls.note_request(request)
            response = await call_next(request, ctx)
        except Exception as exc:
            raise _as_connect_error(exc, ctx) from None
        calls.note_response(response)
        return response

    async def intercept_client_stream(
        self,
        call_next: Callable[[AsyncIterator[Any], RequestContext[Any, Any]], Awaitable[Any]],
        request: AsyncIterator[Any],
        ctx: RequestContext[Any, Any],
    ) -> Any:
        try:
            return await call_next(_checked(request), ctx)
        except Exception as exc:
            raise _as_connect_error(exc, ctx) from None

    async def intercept_server_stream(
        self,
        call_next: Callable[[Any, RequestContext[Any, Any]], AsyncIterator[Any]],
        request: Any,
        ctx: RequestContext[Any, Any],
    ) -> AsyncIterator[Any]:
        try:
            check_request(request)
            calls.note_request(request)
            async for response in call_next(request, ctx):
                yield response
        except Exception as exc:
            raise _as_connect_error(exc, ctx) from None


async def _checked(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    async for request in requests:
        check_request(request)
        yield request


def _as_connect_error(exc: Exception, ctx: RequestContext[Any, Any]) -> Exception:
    if isinstance(exc, ConnectError):
        return exc
    error = calls.as_service_error(exc, method_path(ctx))
    return connect_error(error) if error is not None else exc


# --- the services, as adapters of the gRPC servicers -------------------------------------------


def connect_service(servicer: object, descriptor: Any) -> object:
    """An object with the snake_case methods connectrpc's generated application calls, each
    calling the gRPC servicer's method of the same name."""

    class Service:
        pass

    service = Service()
    for method in descriptor.methods:
        grpc_method = getattr(servicer, method.name)
        snake = _snake(method.name)
        if method.client_streaming and method.server_streaming:
            setattr(service, snake, _bidi_not_over_http(method.full_name))
        elif method.server_streaming:
            setattr(service, snake, _server_stream(grpc_method))
        else:
            setattr(service, snake, _unary(grpc_method))
    return service


def _unary(grpc_method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    async def call(request: Any, ctx: RequestContext[Any, Any]) -> Any:
        return await grpc_method(request, calls.NO_CONTEXT)

    return call


def _server_stream(grpc_method: Callable[..., AsyncIterator[Any]]) -> Callable[..., Any]:
    def call(request: Any, ctx: RequestContext[Any, Any]) -> AsyncIterator[Any]:
        return grpc_method(request, calls.NO_CONTEXT)

    return call


def _bidi_not_over_http(full_name: str) -> Callable[..., Any]:
    async def call(requests: Any, ctx: RequestContext[Any, Any]) -> AsyncIterator[Any]:
        raise ServiceError(
            ErrorKind.UNIMPLEMENTED,
            "BIDI_STREAM_NEEDS_GRPC",
            f"{full_name} streams both ways, which needs HTTP/2 end to end: call it over gRPC, "
            "or send each order with SubmitOrder.",
        )
        yield  # an async generator, as connectrpc expects of a bidirectional method

    return call


def _snake(name: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
