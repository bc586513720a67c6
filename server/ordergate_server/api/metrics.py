"""Prometheus metrics: RPCs by method and code, refusals by client, order outcomes and lag,
file-drop files, and the database's gauges (db_signals.py).

Each server has its own registry (tests run several servers in one process). The RPC series are
written by OutcomeInterceptor (outcomes.py); the database's gauges are read when Prometheus
scrapes. docs/operations.md lists every series and what to alert on.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from ..domain.records import OrderRecord
from ..service import monitoring
from ..storage import Database
from .db_signals import DatabaseSignals


def serve_metrics(listen: str, registry: CollectorRegistry) -> Any:
    """prometheus_client's /metrics HTTP server for `registry` on `listen` (host:port); an
    address it cannot have is an OSError that names it."""
    host, _, port = listen.rpartition(":")
    try:
        server, _ = start_http_server(
            int(port), addr=host.strip("[]") or "0.0.0.0", registry=registry
        )
    except OSError as exc:
        raise OSError(
            f"cannot serve /metrics on ORDERGATE_METRICS_LISTEN={listen}: {exc.strerror or exc}"
        ) from None
    return server


class Metrics:
    def __init__(self, db: Database, stuck_rules: list[monitoring.StuckRule]) -> None:
        self.registry = CollectorRegistry()
        self.rpcs = Counter(
            "ordergate_rpc_requests",
            "RPCs by method and the status code the client received",
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
        self.rejected = Counter(
            "ordergate_rejected_calls",
            "Calls refused, by client (the authenticated client's name, 'unauthenticated' before "
            "a key was accepted) and ErrorInfo reason; the server's own failures not counted",
            ["client", "reason"],
            registry=self.registry,
        )
        self.file_drop_files = Counter(
            "ordergate_file_drop_files",
            "Files taken from the drop folders: processed (imported), problem (set aside)",
            ["outcome"],
            registry=self.registry,
        )
        self.webhook_deliveries = Counter(
            "ordergate_webhook_deliveries",
            "Webhook delivery attempts, by outcome: delivered (2xx), retry (failed, tried again "
            "later), failed (failed, the retry schedule spent)",
            ["outcome"],
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
        # The same workers' ORDERGATE_MAX_CONCURRENT_RPCS, summed: in flight near it, calls are
        # about to be refused SERVER_BUSY (deploy/prometheus/alerts.yml). 0: no cap.
        self.in_flight_limit = Gauge(
            "ordergate_rpcs_in_flight_limit",
            "Calls the live workers take at once before refusing more (0: no cap)",
            multiprocess_mode="livesum",
            registry=self.registry,
        )
        self.registry.register(DatabaseSignals(db, stuck_rules))
        self._http: Any = None

    def serve(self, listen: str) -> int:
        """Start the /metrics HTTP endpoint; returns its port."""
        self._http = serve_metrics(listen, self.registry)
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
