"""Every RPC's outcome, as the client received it: counted, timed and written to the access log.

The outermost interceptor, so what it sees is what went out: a refusal made by any inner layer
(ErrorInterceptor turns ServiceErrors, lost databases and crashes into statuses) has become an
abort by then, and its code is read back from the call's context. A lost database is therefore
counted as UNAVAILABLE, the code the client got, not as the exception behind it.
"""

from __future__ import annotations

import asyncio
import time

import grpc
from opentelemetry import trace

from ..observability import log_access, tracing_configured
from .interceptors import (
    Context,
    Handler,
    _GuardInterceptor,
    _pass_on,
    _wrap,
    call_record,
    start_call_record,
)
from .metrics import Metrics

# Refusals that are the server's own failure, not a refusal of the caller's call.
_NOT_REJECTIONS = frozenset({"INTERNAL", "DATABASE_UNAVAILABLE"})
# Distinct client names a process labels ordergate_rejected_calls with; later ones are counted
# as "other" (clients are made by operators, but a label set must stay bounded whatever happens).
MAX_CLIENT_LABELS = 200


class OutcomeInterceptor(_GuardInterceptor):
    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics
        self._client_label = BoundedLabels(MAX_CLIENT_LABELS)
        self._traced = tracing_configured()

    def guard(self, handler: Handler, method: str) -> Handler:
        service, _, name = method.rpartition("/")
        logged_name = f"{service.rpartition('.')[2]}/{name}"

        async def before(context: Context) -> None:
            start_call_record(time.perf_counter())

        def after(context: Context, error: BaseException | None) -> None:
            record = call_record()
            duration = time.perf_counter() - record.started
            code = _code_sent(context, error)
            self._metrics.rpcs.labels(name, code).inc()
            self._metrics.latency.labels(name).observe(duration)
            if record.reason == "DUPLICATE_ORDER_ID":
                self._metrics.orders.labels("duplicate").inc()
            if code != "OK" and record.reason and record.reason not in _NOT_REJECTIONS:
                client = self._client_label(record.client or "unauthenticated")
                self._metrics.rejected.labels(client, record.reason).inc()
            if self._traced:
                span = trace.get_current_span()
                span.set_attribute("rpc.grpc.status_code", _CODE_NUMBERS.get(code, 2))
                if code != "OK":
                    span.set_status(trace.StatusCode.ERROR, record.reason or code)
            log_access(
                logged_name,
                code,
                duration,
                client=record.client,
                request_id=record.request_id,
                order_id=record.order_id,
                peer=context.peer() or "",
            )

        return _wrap(handler, before, _pass_on, after)


class BoundedLabels:
    """Label values as given, up to `limit` distinct ones; past that, "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


_CODE_NUMBERS = {code.name: code.value[0] for code in grpc.StatusCode}


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
