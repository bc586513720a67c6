"""Cross-cutting request handling, as grpc.aio server interceptors.

Each interceptor wraps the method's behaviour (whatever its streaming kind) in an `around`
coroutine. Order, outermost first: the call's outcome (metrics and the access log, outcomes.py),
errors (ServiceError and crashes -> google.rpc.Status), the process's cap on calls in flight (load
shedding), authentication and role checks, which put the caller's Principal in a context variable
for the servicer, and the per-key rate and stream limits.

Each is a gRPC adapter around the transport-neutral pieces of calls.py, which HTTP (http/) uses
too; what the outcome is told about a call (its client, request_id, order id, error reason) each
layer writes into the call's record as it learns it.
"""

from __future__ import annotations

import contextvars
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeAlias

import grpc
from google.protobuf.message import DecodeError
from grpc.aio import ServerInterceptor, ServicerContext

from ..service.auth import Authenticator
from ..service.errors import ErrorKind, ServiceError
from ..service.rate_limits import KeyLimits
from . import calls, errors, permissions
from .request_checks import check_request

log = logging.getLogger(__name__)

Handler: TypeAlias = "grpc.RpcMethodHandler[Any, Any]"
Context: TypeAlias = "ServicerContext[Any, Any]"


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
            if isinstance(exc, grpc.aio.AbortError):
                return  # an abort already made
            error = calls.as_service_error(exc, method)
            if error is None:
                return  # a cancellation
            status = errors.to_status(error)
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
            calls.note_request(decoded)
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
            calls.note_response(response)
            return response

        run = unary
    return factory(run, request_deserializer=None, response_serializer=handler.response_serializer)


class AuthInterceptor(_GuardInterceptor):
    """`authorization: Bearer <key>` -> Principal; then the method's role check."""

    def __init__(self, authenticator: Authenticator) -> None:
        super().__init__()
        self._authenticator = authenticator

    def guard(self, handler: Handler, method: str) -> Handler:
        async def before(context: Context) -> None:
            header = ""
            for key, value in context.invocation_metadata() or ():
                if key == "authorization":
                    header = value if isinstance(value, str) else value.decode(errors="replace")
            principal = calls.authenticate(
                self._authenticator, header, peer_address(context.peer())
            )
            calls.check_role(principal, method)
            calls.set_principal(principal)

        return _wrap(handler, before, _pass_on)


class InFlightInterceptor(_GuardInterceptor):
    """The process's cap on calls at once (calls.InFlight, shared with HTTP), before
    authentication or any database work. Watches (one request answered by an open-ended
    stream) are not counted; health and reflection are never guarded.

    This replaces gRPC's own `maximum_concurrent_rpcs`, which counts health checks and watches
    too and refuses with a bare RESOURCE_EXHAUSTED (no reason, no RetryInfo). Calls that gRPC
    holds before this process takes them up are another matter: MAX_PENDING_CALLS (server.py)."""

    def __init__(self, in_flight: calls.InFlight) -> None:
        super().__init__()
        self._in_flight = in_flight

    def guard(self, handler: Handler, method: str) -> Handler:
        if handler.response_streaming and not handler.request_streaming:
            return handler

        async def before(context: Context) -> None:
            self._in_flight.enter()
            _holding_slot.set(True)

        def after(context: Context, error: BaseException | None) -> None:
            if _holding_slot.get(False):
                self._in_flight.leave()

        return _wrap(handler, before, _pass_on, after)


# Whether this call holds one of the in-flight slots (set only once it took one).
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
            key_id = calls.current_principal().key_id
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
