"""Every gRPC call's outcome, as the client received it: counted, timed and written to the access
log (calls.Outcomes, which HTTP calls go through too).

The outermost interceptor, so what it sees is what went out: a refusal made by any inner layer
(ErrorInterceptor turns ServiceErrors, lost databases and crashes into statuses) has become an
abort by then, and its code is read back from the call's context. A lost database is therefore
counted as UNAVAILABLE, the code the client got, not as the exception behind it.
"""

from __future__ import annotations

import asyncio
import contextvars
import time

import grpc

from ..observability import tracing_configured
from . import calls
from .interceptors import Context, Handler, _GuardInterceptor, _pass_on, _wrap
from .metrics import Metrics


class OutcomeInterceptor(_GuardInterceptor):
    def __init__(self, metrics: Metrics, outcomes: calls.Outcomes | None = None) -> None:
        super().__init__()
        self.outcomes = outcomes or calls.Outcomes(metrics, traced=tracing_configured())

    def guard(self, handler: Handler, method: str) -> Handler:
        async def before(context: Context) -> None:
            calls.start_call_record(time.perf_counter())
            # The peer is read now, while the call is alive: grpcio reads it from the core
            # call, which is gone once the client cancelled or dropped its connection, and
            # context.peer() then crashed the whole process (SIGSEGV) at the end of a watch
            # the client walked away from (tests/e2e/test_dropped_streams.py).
            _peer.set(context.peer() or "")

        def after(context: Context, error: BaseException | None) -> None:
            record = calls.call_record()
            duration = time.perf_counter() - record.started
            self.outcomes.record(
                method, _code_sent(context, error), record, duration, _peer.get("")
            )

        return _wrap(handler, before, _pass_on, after)


# The caller's address, read at the start of the call (see OutcomeInterceptor.before).
_peer: contextvars.ContextVar[str] = contextvars.ContextVar("peer")


def _code_sent(context: Context, error: BaseException | None) -> str:
    """The status code the client receives for this call."""
    if error is None:
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "OK"
    if isinstance(error, grpc.aio.AbortError):
        code = context.code()
        return code.name if isinstance(code, grpc.StatusCode) else "UNKNOWN"
    if isinstance(error, asyncio.CancelledError):
        return "CANCELLED"  # the client went away or its deadline passed
    return "UNKNOWN"  # what gRPC answers an exception no inner layer turned into a status
