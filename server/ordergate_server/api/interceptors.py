"""Cross-cutting request handling, as grpc.aio server interceptors.

Each interceptor wraps the method's behaviour (whatever its streaming kind) in an `around`
coroutine. Order, outermost first: the call's outcome (metrics and the access log, outcomes.py),
errors (ServiceError and crashes -> google.rpc.Status), the process's cap on calls in flight (load
shedding), authentication and role checks, which put the caller's Principal in a context variable
for the servicer, and the per-key rate and stream limits.

What the outcome is told about a call (its client, request_id, order id, error reason) each layer
writes into the call's `CallRecord` as it learns it.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError
from grpc.aio import ServerInterceptor, ServicerContext
from prometheus_client import Gauge
from sqlalchemy.exc import OperationalError

from ..domain.access import Principal
from ..service.auth import Authenticator
from ..service.errors import ErrorKind, ServiceError
from ..service.rate_limits import KeyLimits
from . import errors, permissions
from .request_checks import check_request

log = logging.getLogger(__name__)

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "ServicerContext[Any, Any]"


def current_principal() -> Principal:
    """The authenticated caller of the RPC being served (set by AuthInterceptor)."""
    return _principal.get()


@contextlib.contextmanager
def calling_as(principal: Principal) -> Iterator[None]:
    """Servicer code run as `principal` outside a gRPC call: servicer-level tests call the
    servicers' methods in-process (grpcio-testing cannot: it drives only synchronous ones)."""
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


@dataclass
class CallRecord:
    """What is known about the call being served, for its access-log line and metrics: never
    personal data (no names, addresses or documents), only identifiers."""

    started: float = 0.0  # time.perf_counter() when it reached the outermost interceptor
    client: str = ""  # the authenticated client's name; "" before (or without) authentication
    request_id: str = ""  # the request's own request_id, if it has one
    order_id: str = ""  # the order the call was about (asked for, or answered)
    reason: str = ""  # the ErrorInfo reason it was refused with


_call_record: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "call_record", default=None
)


def start_call_record(started: float) -> None:
    """A fresh record for the call being served (OutcomeInterceptor, outermost)."""
    _call_record.set(CallRecord(started))


def call_record() -> CallRecord:
    """The record of the call being served (after start_call_record)."""
    record = _call_record.get()
    assert record is not None
    return record


def _note(**fields: str) -> None:
    record = _call_record.get()
    if record is not None:
        for name, value in fields.items():
            setattr(record, name, value)


# (request streaming, response streaming) -> the handler's behaviour attribute and factory.
_KINDS: dict[tuple[bool, bool], tuple[str, Callable[..., Handler]]] = {
    (False, False): ("unary_unary", grpc.unary_unary_rpc_method_handler),
    (False, True): ("unary_stream", grpc.unary_stream_rpc_method_handler),
    (True, False): ("stream_unary", grpc.stream_unary_rpc_method_handler),
    (True, True): ("stream_stream", grpc.stream_stream_rpc_method_handler),
}


def _wrap(
    handler: Handler,
    before: Callable[[Context], Awaitable[None]],
    on_error: Callable[[Context, BaseException], Awaitable[None]],
    after: Callable[[Context, BaseException | None], None] | None = None,
) -> Handler:
    """A copy of `handler` whose behaviour first awaits `before(context)`, hands any exception
    to `on_error(context, exc)`, and finally calls `after(context, exc or None)`; works for all
    four streaming kinds."""

    def finish(context: Context, error: BaseException | None) -> None:
        if after is not None:
            after(context, error)

    def unary(behaviour: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        async def run(request: Any, context: Context) -> Any:
            error: BaseException | None = None
            try:
                await before(context)
                return await behaviour(request, context)
            except BaseException as exc:
                error = exc
                request = None  # not kept by the abort's traceback (ErrorInterceptor)
                await on_error(context, exc)
                raise
            finally:
                finish(context, error)
                # The frame must not keep its exception: the exception's traceback holds this
                # frame, and the cycle, with the request in it, would wait for the garbage
                # collector's oldest generation. A refused 1 MB request left that behind each
                # time: a worker grew to 1.1 GB in 350 such calls (tests/e2e/
                # test_memory_under_abuse.py).
                error = None

        return run

    def streaming(
        behaviour: Callable[..., AsyncIterator[Any]],
    ) -> Callable[..., AsyncIterator[Any]]:
        async def run(request: Any, context: Context) -> AsyncIterator[Any]:
            error: BaseException | None = None
            try:
                await before(context)
                async for item in behaviour(request, context):
                    yield item
            except BaseException as exc:
                error = exc
                request = None  # not kept by the abort's traceback (ErrorInterceptor)
                await on_error(context, exc)
                raise
            finally:
                finish(context, error)
                error = None  # as above: no cycle through this frame

        return run

    attribute, factory = _KINDS[(handler.request_streaming, handler.response_streaming)]
    wrapper = streaming if handler.response_streaming else unary
    return factory(
        wrapper(getattr(handler, attribute)),
        request_deserializer=handler.request_deserializer,
        response_serializer=handler.response_serializer,
    )


async def _nothing(_context: Context) -> None:
    return None


async def _pass_on(_context: Context, _exc: BaseException) -> None:
    """on_error for wrappers that leave errors to the outer ErrorInterceptor (_wrap re-raises)."""
    return None


class _GuardInterceptor(ServerInterceptor):  # type: ignore[type-arg]
    """Wraps the handler of every RPC of ours; health and reflection pass untouched.

    gRPC asks every interceptor for the handler on every call, but a method's handler is the
    same object each time, so its guarded copy is made once per method and kept: making the
    closures and handler tuple anew took the four interceptors from 2.4 to 12.0 us per call. A
    different handler for the method (an inner interceptor's own choice) is wrapped anew."""

    def __init__(self) -> None:
        self._guarded: dict[str, tuple[Handler, Handler]] = {}  # method -> (handler, guarded)

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Handler]],
        details: grpc.HandlerCallDetails,
    ) -> Handler:
        handler = await continuation(details)
        if handler is None:  # no such method: nothing to guard, and nothing kept for it
            return handler
        method = details.method
        known = self._guarded.get(method)
        if known is None or known[0] is not handler:
            guarded = handler if permissions.is_public(method) else self.guard(handler, method)
            known = self._guarded[method] = (handler, guarded)
        return known[1]

    def guard(self, handler: Handler, method: str) -> Handler:
        raise NotImplementedError


class ErrorInterceptor(_GuardInterceptor):
    """ServiceError -> its rich status; a lost database -> UNAVAILABLE (safe to retry: requests
    that change anything carry a request_id); anything else -> INTERNAL, logged."""

    def guard(self, handler: Handler, method: str) -> Handler:
        async def on_error(context: Context, exc: BaseException) -> None:
            if isinstance(exc, ServiceError):
                status = errors.to_status(exc)
                _note(reason=exc.reason)
            elif isinstance(exc, OperationalError):
                log.warning("database unavailable in %s: %s", method, exc.orig)
                status = errors.to_status(_DATABASE_UNAVAILABLE)
                _note(reason=_DATABASE_UNAVAILABLE.reason)
            elif isinstance(exc, Exception) and not isinstance(exc, grpc.aio.AbortError):
                log.exception("unexpected error in %s", method)
                status = errors.internal_status()
                _note(reason="INTERNAL")
            else:
                return  # a cancellation, or an abort already made
            # gRPC keeps the abort's exception on the call's state, in a reference cycle with
            # the call's frames that only the garbage collector's oldest generation frees. What
            # this exception's traceback holds (every frame of the call, the request among their
            # locals) must not be in it: a worker refusing 1 MB requests grew to 1.1 GB
            # (tests/e2e/test_memory_under_abuse.py).
            exc.__traceback__ = None
            await context.abort_with_status(status)  # type: ignore[attr-defined]

        return _wrap(_decoding_inside(handler), _nothing, on_error)


def _decoding_inside(handler: Handler) -> Handler:
    """`handler`, taking raw bytes and decoding the request message inside its behaviour.

    gRPC would otherwise decode before any interceptor runs, and answer bytes that are not the
    message with UNKNOWN and the parser's exception text; decoded here, they get
    INVALID_ARGUMENT with a stable reason, like any other bad request. A decoded request is
    then held to the contract's field limits (request_checks.py)."""
    decode = handler.request_deserializer
    if decode is None:
        return handler

    def message(raw: bytes) -> Any:
        try:
            decoded = decode(raw)
        except DecodeError:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "REQUEST_MALFORMED",
                "The request is not a valid protobuf message of the method's request type.",
            ) from None
        if not handler.request_streaming:  # a stream's items each have their own
            _note_ids(decoded)
        # Every field within its limits (text length and no NUL, list sizes, ranges, enums,
        # timestamps) before any service sees the request.
        check_request(decoded)
        return decoded

    async def messages(raw_items: AsyncIterator[bytes]) -> AsyncIterator[Any]:
        async for raw in raw_items:
            yield message(raw)

    convert = messages if handler.request_streaming else message
    attribute, factory = _KINDS[(handler.request_streaming, handler.response_streaming)]
    behaviour = getattr(handler, attribute)
    if handler.response_streaming:

        async def stream(raw: Any, context: Context) -> AsyncIterator[Any]:
            async for item in behaviour(convert(raw), context):
                yield item

        run: Callable[..., Any] = stream
    else:

        async def unary(raw: Any, context: Context) -> Any:
            response = await behaviour(convert(raw), context)
            _note_answered_order(response)
            return response

        run = unary
    return factory(run, request_deserializer=None, response_serializer=handler.response_serializer)


def _note_ids(request: Any) -> None:
    """The request's request_id and the order it names, for the call's record."""
    record = _call_record.get()
    if record is None:
        return
    fields = request.DESCRIPTOR.fields_by_name
    if "request_id" in fields:
        record.request_id = request.request_id
    # An order's id: `order_id`, or `id` in a request about one order (GetOrderRequest,
    # ReleaseOrderRequest, ...).
    name = "order_id" if "order_id" in fields else "id"
    field = fields.get(name)
    about_an_order = name == "order_id" or "Order" in request.DESCRIPTOR.name
    if field is not None and field.type == field.TYPE_STRING and about_an_order:
        record.order_id = getattr(request, name)


def _note_answered_order(response: Any) -> None:
    """The id of the order a response carries (SubmitOrder's answer, GetOrder's order)."""
    record = _call_record.get()
    if record is None or record.order_id:
        return
    fields = response.DESCRIPTOR.fields_by_name
    if "order" in fields and fields["order"].message_type is not None:
        if response.HasField("order"):
            record.order_id = response.order.id
    elif "id" in fields and response.DESCRIPTOR.name == "Order":
        record.order_id = response.id


_DATABASE_UNAVAILABLE = ServiceError(
    ErrorKind.UNAVAILABLE, "DATABASE_UNAVAILABLE", "The database is unavailable; retry shortly."
)


class AuthInterceptor(_GuardInterceptor):
    """`authorization: Bearer <key>` -> Principal; then the method's role check."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__()
        self._authenticator = authenticator

    def guard(self, handler: Handler, method: str) -> Handler:
        allowed = permissions.ALLOWED_ROLES.get(method, frozenset())

        async def before(context: Context) -> None:
            principal = self._principal_from(context)
            _note(client=principal.client_name)
            if principal.role not in allowed:
                raise ServiceError(
                    ErrorKind.PERMISSION_DENIED,
                    "ROLE_NOT_ALLOWED",
                    f"Role {principal.role.value} may not call {method.rsplit('/', 1)[-1]}.",
                    metadata={
                        "role": principal.role.value,
                        "allowed_roles": ",".join(sorted(r.value for r in allowed)),
                    },
                )
            _principal.set(principal)

        return _wrap(handler, before, _pass_on)

    def _principal_from(self, context: Context) -> Principal:
        header = ""
        for key, value in context.invocation_metadata() or ():
            if key == "authorization":
                header = value if isinstance(value, str) else value.decode(errors="replace")
        scheme, _, key = header.partition(" ")
        if not header:
            raise _unauthenticated("API_KEY_MISSING", "Send `authorization: Bearer <api key>`.")
        if scheme.lower() != "bearer" or not key.strip():
            raise _unauthenticated("API_KEY_MALFORMED", "Use `authorization: Bearer <api key>`.")
        principal = self._authenticator.authenticate(key.strip(), peer_address(context.peer()))
        if principal is None:
            raise _unauthenticated("API_KEY_INVALID", "The API key is unknown or revoked.")
        return principal


class InFlightInterceptor(_GuardInterceptor):
    """Load shedding: at most `limit` calls of ours at once in this process. One more is refused
    at once, before authentication or any database work, with UNAVAILABLE (reason SERVER_BUSY)
    and a RetryInfo: it did nothing, so repeating it is safe, and every gRPC client (the SDK
    included) retries UNAVAILABLE with backoff. RESOURCE_EXHAUSTED stays the caller's own quota
    (RATE_LIMITED, TOO_MANY_STREAMS), which a retry without waiting does not help.

    Watches (one request answered by an open-ended stream) are not counted: they do no work
    while they wait, and each key may hold only so many (LimitInterceptor); counting them would
    let a few hundred idle watches refuse every order. Health and reflection are never guarded.

    This replaces gRPC's own `maximum_concurrent_rpcs`, which counts health checks and watches
    too and refuses with a bare RESOURCE_EXHAUSTED (no reason, no RetryInfo). Calls that gRPC
    holds before this process takes them up are another matter: MAX_PENDING_CALLS (server.py)."""

    RETRY_AFTER_SECONDS = 0.25

    def __init__(self, limit: int, gauge: Gauge) -> None:
        super().__init__()
        self.limit = limit
        self.in_flight = 0  # touched only on the server's event loop
        self._gauge = gauge  # the same count, for /metrics

    def guard(self, handler: Handler, method: str) -> Handler:
        if handler.response_streaming and not handler.request_streaming:
            return handler

        async def before(context: Context) -> None:
            if 0 < self.limit <= self.in_flight:
                raise ServiceError(
                    ErrorKind.UNAVAILABLE,
                    "SERVER_BUSY",
                    f"The server is serving as many calls as it takes at once ({self.limit}); "
                    "nothing was done. Retry shortly, with backoff.",
                    metadata={"max_concurrent_rpcs": str(self.limit)},
                    retry_after_seconds=self.RETRY_AFTER_SECONDS,
                )
            self.in_flight += 1
            self._gauge.inc()
            _holding_slot.set(True)

        def after(context: Context, error: BaseException | None) -> None:
            if _holding_slot.get(False):
                self.in_flight -= 1
                self._gauge.dec()

        return _wrap(handler, before, _pass_on, after)


# Whether this call holds one of InFlightInterceptor's slots (set only once it took one).
_holding_slot: contextvars.ContextVar[bool] = contextvars.ContextVar("holding_slot")


class LimitInterceptor(_GuardInterceptor):
    """Per-key abuse limits (service/rate_limits.py), after authentication: every call spends a
    token; a streaming call also holds one of the key's stream slots until it ends."""

    def __init__(self, limits: KeyLimits) -> None:
        super().__init__()
        self._limits = limits

    def guard(self, handler: Handler, method: str) -> Handler:
        streaming = handler.request_streaming or handler.response_streaming

        async def before(context: Context) -> None:
            key_id = current_principal().key_id
            self._limits.take(key_id)
            if streaming:
                self._limits.open_stream(key_id)
                _holding_stream.set(key_id)

        def after(context: Context, error: BaseException | None) -> None:
            key_id = _holding_stream.get(None)
            if key_id is not None:
                self._limits.close_stream(key_id)

        return _wrap(handler, before, _pass_on, after)


# The key whose stream slot this call holds (set only once the slot is taken).
_holding_stream: contextvars.ContextVar[str] = contextvars.ContextVar("holding_stream")


def peer_address(peer: str) -> str:
    """The IP address in a gRPC peer string ("ipv4:203.0.113.7:51234", "ipv6:[::1]:51234");
    "" for anything else."""
    kind, _, rest = peer.partition(":")
    if kind == "ipv4":
        return rest.rsplit(":", 1)[0]
    if kind == "ipv6":
        return rest.rsplit(":", 1)[0].strip("[]")
    return ""


def _unauthenticated(reason: str, message: str) -> ServiceError:
    return ServiceError(ErrorKind.UNAUTHENTICATED, reason, message)
