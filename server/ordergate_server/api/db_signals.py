"""Gauges read from the database when Prometheus scrapes: the exception queue's depth and the
stuck orders. Free of gRPC imports, so the `serve --workers` supervisor can serve them too."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ..service import monitoring
from ..storage import Database


class DatabaseSignals(Collector):
    def __init__(self, db: Database, stuck_rules: list[monitoring.StuckRule]) -> None:
        self._db = db
        self._rules = stuck_rules

    def collect(self) -> Iterator[GaugeMetricFamily]:
        depth = GaugeMetricFamily(
            "ordergate_exception_queue_depth",
            "Orders on hold, by hold reason code",
            labels=["reason"],
        )
        for reason, count in sorted(monitoring.held_reason_counts(self._db).items()):
            depth.add_metric([reason], count)
        yield depth
        stuck = GaugeMetricFamily(
            "ordergate_stuck_orders",
            "Orders PICKING or DISPATCHED for longer than the configured threshold",
            labels=["kind"],
        )
        for kind, found in monitoring.stuck_orders(
            self._db, self._rules, datetime.now(UTC)
        ).items():
            stuck.add_metric([kind], len(found))
        yield stuck
