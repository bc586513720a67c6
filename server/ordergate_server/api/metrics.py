"""Prometheus metrics: RPCs by method and code, order outcomes and lag, queue depth, stuck orders.

Each server has its own registry (tests run several servers in one process). Queue depth and
stuck orders are computed from the database when Prometheus scrapes.
"""

from __future__ import annotations

import contextvars
import time
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..domain.records import OrderRecord
from ..service import monitoring
from ..service.errors import ServiceError
from ..storage import Database
from .db_signals import DatabaseSignals
from .interceptors import Context, Handler, _GuardInterceptor, _pass_on, _wrap

_started: contextvars.ContextVar[float] = contextvars.ContextVar("started")


class Metrics:
    def __init__(self, db: Database, stuck_rules: list[monitoring.StuckRule]) -> None:
        self.registry = CollectorRegistry()
        self.rpcs = Counter(
            "ordergate_rpc_requests",
            "RPCs by method and status code",
            ["method", "code"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "ordergate_rpc_duration_seconds",
            "RPC latency by method",
            ["method"],
            registry=self.registry,
        )
        self.orders = Counter(
            "ordergate_orders",
            "Order submissions by outcome: accepted, held, replayed, duplicate",
            ["outcome"],
            registry=self.registry,
        )
        self.lag = Histogram(
            "ordergate_order_lag_seconds",
            "From the order date to its receipt",
            buckets=(60, 300, 900, 3600, 4 * 3600, 24 * 3600, 72 * 3600, float("inf")),
            registry=self.registry,
        )
        # Summed over the live workers of `serve --workers` (multiprocess mode); set by
        # InFlightInterceptor. Near ORDERGATE_MAX_CONCURRENT_RPCS per worker, calls are refused.
        self.in_flight = Gauge(
            "ordergate_rpcs_in_flight",
            "Calls being served now (watches not counted)",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.registry.register(DatabaseSignals(db, stuck_rules))
        self._http: Any = None

    def serve(self, listen: str) -> int:
        """Start the /metrics HTTP endpoint; returns its port."""
        host, _, port = listen.rpartition(":")
        self._http, _ = start_http_server(int(port), addr=host or "0.0.0.0", registry=self.registry)
        return int(self._http.server_port)

    def stop(self) -> None:
        if self._http is not None:
            self._http.shutdown()

    def submitted(self, order: OrderRecord, replayed: bool) -> None:
        if replayed:
            self.orders.labels("replayed").inc()
            return
        self.orders.labels("accepted" if order.state.value == "ACCEPTED" else "held").inc()
        if order.order_time is not None:
            self.lag.observe(max(0.0, (order.created_at - order.order_time).total_seconds()))


class MetricsInterceptor(_GuardInterceptor):
    """Counts every RPC of ours by method and final status code, and times it."""

    def __init__(self, metrics: Metrics) -> None:
        super().__init__()
        self._metrics = metrics

    def guard(self, handler: Handler, method: str) -> Handler:
        name = method.rsplit("/", 1)[-1]

        async def before(context: Context) -> None:
            _started.set(time.perf_counter())

        def after(context: Context, error: BaseException | None) -> None:
            code = "OK"
            if isinstance(error, ServiceError):
                code = error.kind.value
                if error.reason == "DUPLICATE_ORDER_ID":
                    self._metrics.orders.labels("duplicate").inc()
            elif isinstance(error, grpc.aio.AbortError):
                code = "ABORTED"
            elif error is not None:
                code = "CANCELLED" if type(error).__name__ == "CancelledError" else "INTERNAL"
            self._metrics.rpcs.labels(name, code).inc()
            self._metrics.latency.labels(name).observe(time.perf_counter() - _started.get())

        return _wrap(handler, before, _pass_on, after)
