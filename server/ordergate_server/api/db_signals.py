"""Gauges read from the database when Prometheus scrapes: held orders by reason, the oldest held
order's age, orders short of stock, stuck orders, inventory divergences, and whether the
database answered. Free of gRPC
imports, so the `serve --workers` supervisor can serve them too.

A scrape never fails because the database does: /metrics answering 500 would hide everything
else exactly during an outage. A reading that fails keeps its last values, is counted in
ordergate_collector_failures_total, and ordergate_database_up says 0.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..observability import first_line, untraced
from ..service import monitoring
from ..storage import Database

log = logging.getLogger(__name__)


class DatabaseSignals(Collector):
    def __init__(self, db: Database, stuck_rules: list[monitoring.StuckRule]) -> None:
        self._db = db
        self._rules = stuck_rules
        self._lock = threading.Lock()  # scrapes may overlap (one HTTP thread each)
        self._held: dict[str, int] = {}
        self._oldest_held_age = 0.0
        self._stock_short = 0
        self._oldest_webhook_age = 0.0
        self._stuck: dict[str, int] = {rule.kind: 0 for rule in stuck_rules}
        self._divergences: dict[str, int] = {}
        self._up = 0
        self._failures = 0

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        with self._lock:
            self._read()
            yield from self._families()

    def _read(self) -> None:
        """Fresh values from the database, or the last ones and a counted failure."""
        now = datetime.now(UTC)
        try:
            with untraced():
                held = monitoring.held_reason_counts(self._db)
                oldest = monitoring.oldest_held_received_at(self._db)
                stock_short = monitoring.stock_short_count(self._db)
                stuck = monitoring.stuck_counts(self._db, self._rules, now)
                oldest_webhook = monitoring.oldest_pending_webhook(self._db)
                divergences = monitoring.divergence_counts(self._db)
        except Exception as exc:
            self._up = 0
            self._failures += 1
            log.warning("metrics: the database gauges could not be read: %s", first_line(exc))
            return
        self._held = held
        self._oldest_held_age = max(0.0, (now - oldest).total_seconds()) if oldest else 0.0
        self._stock_short = stock_short
        self._oldest_webhook_age = (
            max(0.0, (now - oldest_webhook).total_seconds()) if oldest_webhook else 0.0
        )
        self._stuck = stuck
        self._divergences = divergences
        self._up = 1

    def _families(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        depth = GaugeMetricFamily(
            "ordergate_exception_queue_depth",
            "Orders on hold, by hold reason code (an order with two reasons counts under both)",
            labels=["reason"],
        )
        for reason, count in sorted(self._held.items()):
            depth.add_metric([reason], count)
        yield depth
        yield GaugeMetricFamily(
            "ordergate_oldest_held_order_age_seconds",
            "How long the longest-waiting order on hold has been waiting since it came in "
            "(0 with none on hold)",
            value=self._oldest_held_age,
        )
        yield GaugeMetricFamily(
            "ordergate_stock_short_orders",
            "Orders on hold for stock alone (INSUFFICIENT_STOCK, STOCK_SHORT): accepted by the "
            "re-check once stock comes in",
            value=self._stock_short,
        )
        stuck = GaugeMetricFamily(
            "ordergate_stuck_orders",
            "Orders PICKING or DISPATCHED for longer than the configured threshold",
            labels=["kind"],
        )
        for kind, count in self._stuck.items():
            stuck.add_metric([kind], count)
        yield stuck
        yield GaugeMetricFamily(
            "ordergate_webhook_oldest_pending_age_seconds",
            "How long the longest-waiting webhook delivery not yet taken by its receiver has "
            "been waiting (0 with none pending)",
            value=self._oldest_webhook_age,
        )
        divergences = CounterMetricFamily(
            "ordergate_inventory_divergences",
            "Stock reconciliations' counts off ours beyond the threshold (INVENTORY_DIVERGENCE "
            "alerts), by location",
            labels=["location"],
        )
        for location, count in sorted(self._divergences.items()):
            divergences.add_metric([location], count)
        yield divergences
        yield GaugeMetricFamily(
            "ordergate_database_up",
            "1 if the last scrape read the database, 0 if it could not (the gauges above then "
            "keep their last values)",
            value=self._up,
        )
        yield CounterMetricFamily(
            "ordergate_collector_failures",
            "Scrapes whose database gauges could not be read",
            value=self._failures,
        )
