"""Cost as history grows: intake and reads on a database that already holds many orders.

    python -m bench.history [--db sqlite|postgres|both] [--sizes 0,100000,1000000]
                            [--seconds 8] [--reads 200] [--workers 2] [--soak 600 | --rounds 5]
    python -m bench.history growth [--db ...] [--orders 80000] [--chunk 16000]
    python -m bench.history storage [--db ...] [--orders 100000] [--delivered-days 365]
                                    [--cancelled-days 90]
    python -m bench.history report RUN.jsonl [RUN.jsonl ...]

The first form fills a database with N stored orders through a bulk path of its own (the data
as the server writes it: several clients and their customers, many SKUs with a few hot ones, a
share held, a share shipped and delivered, their events, documents, shipments and stock
changes), then serves it with `ordergate serve` and measures, next to the Health/Check rate of
the same run:

- SubmitOrder and SubmitOrders (8 streams) throughput, as ratios to the health checks;
- p50/p99 of GetOrder by id and by the shop's order number, ListOrders with each filter,
  ListHeldOrders, GetOrderDocument, WatchOrderEvents resumed from an old event, and
  GetStockLevels for 100 SKUs;
- database bytes per stored order, and the workers' resident memory;
- with `--soak S`, at the largest size: S seconds of mixed traffic (submits, reads, listings,
  stock levels, resumed watches), the workers' RSS sampled each minute after a minute of
  warm-up, and its growth over the soak.

With `--rounds R`, every size is filled once and measured R times, the sizes interleaved in an
order rotated each round, each time on a fresh copy of its filled database; then a summary of
the largest size against the smallest and the middle one, per round, as median, lowest and
highest. One pass per size cannot tell a 10% effect from a 2-core machine's run-to-run noise;
the medians of interleaved rounds can. `report` turns the summaries of such runs (their
printed lines, saved to files) into the markdown table bench/README.md shows.

`storage` measures database bytes per stored order three ways: documents uncompressed (as
stored before migration 0011), compressed (as stored now), and after `ordergate prune` of the
orders finished more than the given days ago (the fill spans two years).

`growth` is the way a new user meets it: an empty database, nothing but the server's own
traffic (no ANALYZE by hand), `--orders` one-line orders sent on 8 SubmitOrders streams, the
rate printed for each `--chunk`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from ordergate.v1 import (
    exception_queue_service_pb2,
    exception_queue_service_pb2_grpc,
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_pb2,
    order_service_pb2,
    order_service_pb2_grpc,
)
from ordergate_server.domain.ids import new_id
from ordergate_server.storage.submissions import pack

from .harness import (
    Target,
    connections,
    copy_of,
    ordergate,
    run_load,
    seeded_database,
    server,
    server_workers,
)
from .submit_orders import run_streams

CLIENTS = [f"shop-{n}" for n in range(8)]
CUSTOMERS_PER_CLIENT = 50
SKUS = [f"H-{n:05d}" for n in range(2000)]
HOT = SKUS[:20]  # a fifth of all lines are for these
START = datetime(2024, 12, 1, tzinfo=UTC)  # two years of history before the measured run

# What becomes of stored orders (shares of 100), as on a wholesaler's busy shop.
FATES = [("DELIVERED", 62), ("DISPATCHED", 6), ("ACCEPTED", 12), ("ON_HOLD", 8), ("CANCELLED", 12)]


def catalog() -> dict[str, Any]:
    return {
        "locations": [{"code": "DC", "name": "History DC", "priority": 1}],
        "products": [{"sku": sku, "name": f"Product {sku}"} for sku in SKUS],
        "stock": [{"sku": sku, "location": "DC", "on_hand": 1_000_000_000} for sku in SKUS],
        "customers": [
            {"account": f"C-{c}-{n:03d}", "name": f"Customer {n}", "currency": "EUR", "client": c}
            for c in CLIENTS
            for n in range(CUSTOMERS_PER_CLIENT)
        ],
    }


def order_xml(order_id: str, customer: str, sku: str, quantity: int) -> bytes:
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Order xmlns="urn:ordergate:order:v1">'
        f"<OrderId>{order_id}</OrderId><OrderDate>2026-11-23</OrderDate>"
        f"<CustomerAccount>{customer}</CustomerAccount><Channel>web</Channel>"
        "<Currency>EUR</Currency><Delivery><Address><Name>Goods In</Name>"
        "<Street>Hafenstraße 1</Street><City>Hamburg</City><PostalCode>20457</PostalCode>"
        "<Country>DE</Country></Address><Contact><Phone>+49 40 1234567</Phone>"
        "<Email>in@example.com</Email></Contact></Delivery><Lines><Line><LineNumber>1</LineNumber>"
        f"<Sku>{sku}</Sku><Quantity>{quantity}</Quantity><UnitPrice>4.20</UnitPrice></Line>"
        "</Lines></Order>"
    ).encode()


# --- filling -----------------------------------------------------------------------------------


class Filler:
    """Writes orders as the server stores them, many at a time, with explicit keys."""

    def __init__(self, url: str, client_ids: dict[str, int], compress: bool = True) -> None:
        self.url = url
        self.compress = compress  # documents as the server stores them; False: as before 0011
        self.kind = make_url(url).get_backend_name()
        self.client_ids = client_ids
        self.engine = create_engine(url)
        self.rng = random.Random(7)
        self.seqs = {"orders": 0, "order_events": 0, "shipments": 0, "stock_changes": 0}
        self.allocated: dict[str, int] = {}
        self.total = 0

    def fill(self, count: int, batch: int = 20_000) -> None:
        self.total = count
        done = 0
        while done < count:
            n = min(batch, count - done)
            self._batch(self.seqs["orders"], n)
            done += n
        self._finish()

    def _batch(self, first: int, n: int) -> None:
        rows: dict[str, list[tuple[Any, ...]]] = {
            name: []
            for name in (
                "orders",
                "order_lines",
                "order_holds",
                "order_events",
                "submissions",
                "shipments",
                "shipment_lines",
                "stock_changes",
            )
        }
        span = (datetime(2026, 12, 1, tzinfo=UTC) - START).total_seconds()
        for k in range(n):
            seq = first + k + 1
            client = CLIENTS[self.rng.randrange(len(CLIENTS))]
            client_id = self.client_ids[client]
            customer = f"C-{client}-{self.rng.randrange(CUSTOMERS_PER_CLIENT):03d}"
            sku = self.rng.choice(HOT) if self.rng.random() < 0.2 else self.rng.choice(SKUS)
            quantity = self.rng.randint(1, 5)
            fate = self.rng.choices([f for f, _ in FATES], [w for _, w in FATES])[0]
            if fate in ("DISPATCHED", "ACCEPTED", "ON_HOLD") and seq < 0.99 * self.total:
                fate = "DELIVERED"  # the live orders are the newest; older ones are done
            created = START + timedelta(seconds=span * seq / self.total)
            updated = created + timedelta(hours=self.rng.randint(1, 96))
            order_id, client_order_id = new_id(), f"H-{seq}"
            xml = order_xml(client_order_id, customer, sku, quantity)
            digest = hashlib.sha256(xml).hexdigest()
            held = fate == "ON_HOLD"
            shipped = fate in ("DELIVERED", "DISPATCHED")
            holds = (
                [{"code": "INSUFFICIENT_STOCK", "field": "lines", "message": "short", "rule": ""}]
                if held
                else []
            )
            rows["orders"].append(
                (
                    seq,
                    order_id,
                    client_id,
                    client_order_id,
                    customer,
                    "web",
                    "EUR",
                    created,
                    created,
                    updated,
                    fate,
                    json.dumps(holds),
                    json.dumps(_DELIVERY),
                    "",
                    None if held or fate == "CANCELLED" else "DC",
                    False,
                    digest,
                    "API",
                    None,
                    held,
                    None,
                )
            )
            rows["order_lines"].append(
                (
                    seq,
                    0,
                    1,
                    sku,
                    sku,
                    quantity,
                    "4.20",
                    quantity if fate == "CANCELLED" else 0,
                    quantity if shipped else 0,
                )
            )
            if held:
                rows["order_holds"].append((seq, "INSUFFICIENT_STOCK"))
            steps = [
                "SUBMITTED",
                *{
                    "DELIVERED": ["PICKING", "PICKED", "PACKED", "DISPATCHED", "DELIVERED"],
                    "DISPATCHED": ["PICKING", "PICKED", "PACKED", "DISPATCHED"],
                    "CANCELLED": ["CANCELLED"],
                }.get(fate, []),
            ]
            state = None
            for step in steps:
                self.seqs["order_events"] += 1
                new_state = "ACCEPTED" if step == "SUBMITTED" and not held else step
                new_state = "ON_HOLD" if step == "SUBMITTED" and held else new_state
                rows["order_events"].append(
                    (
                        self.seqs["order_events"],
                        new_id(),
                        seq,
                        updated if step != "SUBMITTED" else created,
                        "system" if step == "DELIVERED" else client,
                        step,
                        state,
                        new_state,
                        "",
                    )
                )
                state = new_state
            rows["submissions"].append(
                (
                    str(uuid.uuid4()),
                    client_id,
                    str(uuid.uuid4()),
                    created,
                    pack(xml) if self.compress else xml,
                    digest,
                    order_id,
                    "ORDER",
                    "GRPC",
                )
            )
            if not held:
                self.seqs["stock_changes"] += 1
                rows["stock_changes"].append(
                    (self.seqs["stock_changes"], created, sku, "DC", "ALLOCATION", 0, quantity)
                )
            if shipped:
                self.seqs["shipments"] += 1
                rows["shipments"].append(
                    (
                        self.seqs["shipments"],
                        new_id(),
                        seq,
                        "DHL",
                        f"JJD{seq:012d}",
                        "DELIVERED" if fate == "DELIVERED" else "SHIPPED",
                        updated,
                        updated,
                        updated if fate == "DELIVERED" else None,
                        "warehouse",
                    )
                )
                rows["shipment_lines"].append((self.seqs["shipments"], 0, quantity))
                self.seqs["stock_changes"] += 1
                rows["stock_changes"].append(
                    (
                        self.seqs["stock_changes"],
                        updated,
                        sku,
                        "DC",
                        "DISPATCH",
                        -quantity,
                        -quantity,
                    )
                )
            elif fate == "ACCEPTED":
                self.allocated[sku] = self.allocated.get(sku, 0) + quantity
        self.seqs["orders"] += n
        self._write(rows)

    def _write(self, rows: dict[str, list[tuple[Any, ...]]]) -> None:
        with self.engine.begin() as conn:
            for table, values in rows.items():
                if values:
                    _copy(conn, table, _COLUMNS[table], values, self.kind)

    def _finish(self) -> None:
        with self.engine.begin() as conn:
            for sku, allocated in self.allocated.items():
                conn.execute(
                    text("UPDATE stock SET allocated = :a WHERE sku = :s AND location = 'DC'"),
                    {"a": allocated, "s": sku},
                )
            if self.kind == "postgresql":
                for table, seq in self.seqs.items():
                    if seq:
                        conn.execute(
                            text(f"SELECT setval(pg_get_serial_sequence('{table}', 'seq'), :n)"),
                            {"n": seq},
                        )
        self.engine.dispose()


_DELIVERY = {  # as storage.orders stores a Delivery
    "name": "Goods In",
    "street_lines": ["Hafenstraße 1"],
    "city": "Hamburg",
    "postal_code": "20457",
    "region": "",
    "country_code": "DE",
    "phone": "+49 40 1234567",
    "email": "in@example.com",
    "window_start": None,
    "window_end": None,
    "special_handling": "",
}

_COLUMNS = {
    "orders": [
        "seq",
        "id",
        "client_id",
        "client_order_id",
        "customer_account",
        "channel",
        "currency",
        "order_time",
        "created_at",
        "updated_at",
        "state",
        "hold_reasons",
        "delivery",
        "notes",
        "allocation_location",
        "problem_submission",
        "content_sha256",
        "source",
        "entered_by",
        "stock_hold",
        "held_from",
    ],
    "order_lines": [
        "order_seq",
        "position",
        "line_number",
        "submitted_code",
        "sku",
        "quantity",
        "unit_price",
        "cancelled_quantity",
        "shipped_quantity",
    ],
    "order_holds": ["order_seq", "code"],
    "order_events": [
        "seq",
        "id",
        "order_seq",
        "created_at",
        "actor",
        "type",
        "old_state",
        "new_state",
        "detail",
    ],
    "submissions": [
        "id",
        "client_id",
        "request_id",
        "received_at",
        "payload",
        "payload_sha256",
        "order_id",
        "outcome",
        "channel",
    ],
    "shipments": [
        "seq",
        "id",
        "order_seq",
        "carrier",
        "tracking_number",
        "state",
        "created_at",
        "updated_at",
        "delivered_at",
        "actor",
    ],
    "shipment_lines": ["shipment_seq", "position", "quantity"],
    "stock_changes": ["seq", "at", "sku", "location", "kind", "on_hand_delta", "allocated_delta"],
}
# Columns the fill leaves to their defaults, given here for SQLite's NOT NULLs.
_DEFAULTS: dict[str, dict[str, Any]] = {
    "shipments": {"without_tracking": False, "tracking_alerted": False},
    "stock_changes": {"on_hand_after": 0, "allocated_after": 0, "actor": "system", "reason": ""},
}


def _copy(
    conn: Any, table: str, columns: list[str], rows: list[tuple[Any, ...]], kind: str
) -> None:
    extra = _DEFAULTS.get(table, {})
    names = columns + list(extra)
    tail = tuple(extra.values())
    if kind == "postgresql":
        cursor = conn.connection.driver_connection.cursor()
        with cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row + tail)
        return
    marks = ", ".join("?" for _ in names)
    conn.exec_driver_sql(
        f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks})",
        [tuple(_sqlite(v) for v in row + tail) for row in rows],
    )


def _sqlite(value: Any) -> Any:
    if isinstance(value, datetime):  # stored naive UTC, as storage.tables.UtcDateTime does
        return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    return value


def database_bytes(url: str) -> int:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        path = Path(parsed.database or "")
        return sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(text("SELECT pg_database_size(current_database())")).scalar_one()
            )
    finally:
        engine.dispose()


def client_ids(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return {name: id_ for id_, name in conn.execute(text("SELECT id, name FROM clients"))}
    finally:
        engine.dispose()


def compact(url: str) -> None:
    """Give free space back to the file system, so the size measured is the data's."""
    full = make_url(url).get_backend_name() == "postgresql"
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM FULL ANALYZE" if full else "VACUUM"))
    finally:
        engine.dispose()


def vacuum(url: str) -> None:
    """After a bulk fill: what autovacuum would have done meanwhile (PostgreSQL), so the
    measured run starts from a database as a running deployment has it."""
    if make_url(url).get_backend_name() != "postgresql":
        return
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(text("VACUUM ANALYZE"))
    finally:
        engine.dispose()


# --- measuring ---------------------------------------------------------------------------------


def _ignore(reply: order_service_pb2.SubmitOrdersResponse) -> None:
    pass


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


async def resumed_watch(target: str, metadata: Any, after_event_id: str) -> float:
    """Milliseconds to the first event of WatchOrderEvents resumed after `after_event_id`, on
    a connection of its own that is closed afterwards. Leaving an `async for` does not end a
    gRPC call (it stays open, and the server keeps serving a watcher nobody reads, until the
    call object is collected), and cancelling many streams on one connection in quick
    succession trips gRPC's rapid-reset defence, which closes the connection."""
    own = [("grpc.use_local_subchannel_pool", 1)]  # else channels share one connection
    async with grpc.aio.insecure_channel(target, options=own) as channel:
        await channel.channel_ready()
        stub = order_service_pb2_grpc.OrderServiceStub(channel)
        started = time.perf_counter()
        call = stub.WatchOrderEvents(
            order_service_pb2.WatchOrderEventsRequest(after_event_id=after_event_id),
            metadata=metadata,
        )
        await call.read()
        return (time.perf_counter() - started) * 1000


def _busy_and_total() -> tuple[int, int]:
    fields = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle, iowait
    return sum(fields) - idle, sum(fields)


async def machine_idle(busy_below: float = 0.1, window: float = 1.0, limit: float = 120) -> float:
    """Seconds until the whole machine (every core, the database's processes too) was busy
    less than `busy_below` of a `window`; gives up after `limit`."""
    started = time.perf_counter()
    while time.perf_counter() - started < limit:
        busy, total = _busy_and_total()
        await asyncio.sleep(window)
        busy_now, total_now = _busy_and_total()
        if busy_now - busy < busy_below * (total_now - total):
            break
    return round(time.perf_counter() - started, 1)


async def _latency(call: Callable[[int], Awaitable[object]], count: int) -> tuple[float, float]:
    """p50 and p99 in ms of `count` calls one after another (reads on an idle server)."""
    times = []
    for n in range(count):
        started = time.perf_counter()
        await call(n)
        times.append((time.perf_counter() - started) * 1000)
    cuts = statistics.quantiles(times, n=100, method="inclusive")
    return round(cuts[49], 2), round(cuts[98], 2)


def io_counters(pids: list[int]) -> dict[str, int]:
    """/proc/PID/io of `pids`, summed: read and write calls and bytes, files and sockets alike."""
    total: dict[str, int] = {}
    for pid in pids:
        for line in Path(f"/proc/{pid}/io").read_text().splitlines():
            name, value = line.split(":")
            total[name] = total.get(name, 0) + int(value)
    return total


async def measure(
    target: Target, keys: dict[str, str], stored: int, seconds: float, reads: int
) -> dict[str, Any]:
    shop, staff = keys["shop-0"], keys["history-staff"]
    md_shop = (("authorization", f"Bearer {shop}"),)
    md_staff = (("authorization", f"Bearer {staff}"),)
    rng = random.Random(11)
    async with connections(target) as channels:
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        orders = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        queue = exception_queue_service_pb2_grpc.ExceptionQueueServiceStub(channels[0])
        stock = inventory_service_pb2_grpc.InventoryServiceStub(channels[0])
        check = health_pb2.HealthCheckRequest()
        lanes = len(channels)

        async def health_call(n: int, lane: int) -> object:
            return await health[lane].Check(check)

        def new_order(n: int) -> bytes:
            customer = f"C-shop-0-{n % CUSTOMERS_PER_CLIENT:03d}"
            sku = rng.choice(HOT) if n % 5 == 0 else rng.choice(SKUS)
            return order_xml(f"NEW-{uuid.uuid4().hex[:12]}", customer, sku, 1)

        async def submit_call(n: int, lane: int) -> object:
            return await orders[lane].SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=new_order(n)
                ),
                metadata=md_shop,
            )

        await run_load(health_call, concurrency=32, seconds=1, lanes=lanes)
        await run_load(submit_call, concurrency=32, seconds=1, lanes=lanes)
        baseline = await run_load(health_call, concurrency=32, seconds=seconds, lanes=lanes)
        pids = server_workers(target.pid) or [target.pid]
        io_before = io_counters(pids)
        submits = await run_load(submit_call, concurrency=32, seconds=seconds, lanes=lanes)
        io_after = io_counters(pids)
        streamed = await run_streams(
            orders, md_shop, streams=8, window=4, seconds=seconds, on_reply=_ignore
        )

        # Reads are measured on an idle machine: after the intake phases the server and the
        # database still write back their work for a while (SQLite's checkpoint of the log,
        # PostgreSQL's autovacuum of the tables they grew; longer, the larger the tables), and
        # reads timed meanwhile time that, not the read.
        settled = await machine_idle()

        # Reads of stored history: shop-0's orders from the first year (none when empty).
        old = order_service_pb2.ListOrdersRequest(page_size=200)
        old.create_time_before.FromDatetime(datetime(2025, 12, 1, tzinfo=UTC))
        listed = await orders[0].ListOrders(old, metadata=md_shop)
        if not listed.orders:  # an empty history: the orders of the submit phases
            listed = await orders[0].ListOrders(
                order_service_pb2.ListOrdersRequest(page_size=200), metadata=md_shop
            )
        ids = [o.id for o in listed.orders]
        numbers = [o.client_order_id for o in listed.orders]
        one = orders[0]
        oldest = await one.GetOrder(order_service_pb2.GetOrderRequest(id=ids[-1]), metadata=md_shop)
        first_event = oldest.order.events[0].id
        filters = {
            "ListOrders (none)": order_service_pb2.ListOrdersRequest(page_size=50),
            "ListOrders (state)": order_service_pb2.ListOrdersRequest(
                page_size=50, state=order_pb2.ORDER_STATE_DELIVERED
            ),
            "ListOrders (customer)": order_service_pb2.ListOrdersRequest(
                page_size=50, customer_account="C-shop-0-007"
            ),
            "ListOrders (hold reason)": order_service_pb2.ListOrdersRequest(
                page_size=50, hold_reason="INSUFFICIENT_STOCK"
            ),
            "ListOrders (source)": order_service_pb2.ListOrdersRequest(
                page_size=50, source=order_pb2.ORDER_SOURCE_API
            ),
            "ListOrders (by update time)": order_service_pb2.ListOrdersRequest(
                page_size=50,
                order_by=order_service_pb2.LIST_ORDERS_ORDER_BY_UPDATE_TIME,
            ),
        }
        created = order_service_pb2.ListOrdersRequest(page_size=50)
        created.create_time_after.FromDatetime(datetime(2025, 6, 1, tzinfo=UTC))
        created.create_time_before.FromDatetime(datetime(2025, 6, 8, tzinfo=UTC))
        filters["ListOrders (created between)"] = created
        latency: dict[str, tuple[float, float]] = {}
        latency["GetOrder (id)"] = await _latency(
            lambda n: one.GetOrder(
                order_service_pb2.GetOrderRequest(id=ids[n % len(ids)]), metadata=md_shop
            ),
            reads,
        )
        latency["GetOrder (shop's number)"] = await _latency(
            lambda n: one.GetOrder(
                order_service_pb2.GetOrderRequest(client_order_id=numbers[n % len(numbers)]),
                metadata=md_shop,
            ),
            reads,
        )
        for name, request in filters.items():

            def listing(n: int, r: order_service_pb2.ListOrdersRequest = request) -> Any:
                return one.ListOrders(r, metadata=md_staff)

            latency[name] = await _latency(listing, reads)
        latency["ListHeldOrders"] = await _latency(
            lambda n: queue.ListHeldOrders(
                exception_queue_service_pb2.ListHeldOrdersRequest(page_size=50),
                metadata=md_staff,
            ),
            reads,
        )
        latency["GetOrderDocument"] = await _latency(
            lambda n: one.GetOrderDocument(
                order_service_pb2.GetOrderDocumentRequest(id=ids[n % len(ids)]), metadata=md_shop
            ),
            reads,
        )

        waits = [await resumed_watch(target, md_shop, first_event) for _ in range(reads // 4)]
        cuts = statistics.quantiles(waits, n=100, method="inclusive")
        latency["WatchOrderEvents (resumed, first event)"] = (
            round(cuts[49], 2),
            round(cuts[98], 2),
        )
        codes = SKUS[:: len(SKUS) // 100][:100]
        latency["GetStockLevels (100 SKUs)"] = await _latency(
            lambda n: stock.GetStockLevels(
                inventory_service_pb2.GetStockLevelsRequest(codes=codes), metadata=md_shop
            ),
            reads,
        )
    return {
        "stored": stored,
        "health_per_s": round(baseline.rate),
        "submit_ratio": round(submits.rate / baseline.rate, 3),
        "submit_per_s": round(submits.rate),
        "stream_ratio": round(streamed.rate / baseline.rate, 3),
        "stream_per_s": round(streamed.rate),
        "idle_after_s": settled,
        # The workers' reads and writes per SubmitOrder: the same calls' sockets at every size,
        # so what changes with the size is the database's (SQLite's file and log; PostgreSQL's
        # are its own processes').
        "submit_io_per_order": {
            "read_calls": round((io_after["syscr"] - io_before["syscr"]) / submits.calls, 1),
            "read_kb": round((io_after["rchar"] - io_before["rchar"]) / submits.calls / 1024, 1),
            "write_kb": round((io_after["wchar"] - io_before["wchar"]) / submits.calls / 1024, 1),
        },
        "latency_ms": latency,
    }


async def soak(
    target: str, keys: dict[str, str], pids: list[int], seconds: float, every: float
) -> dict[str, Any]:
    """Mixed traffic for `seconds` (a quarter submits, the rest reads of old and new orders,
    documents, listings with filters and stock levels; a watcher following every new event,
    and one resumed from the oldest event every two seconds), the workers' RSS sampled after
    each `every` seconds. The first sample is taken after one `every` of warm-up (connection
    pools, caches and compiled queries filled), and growth is measured from it."""
    md_shop = (("authorization", f"Bearer {keys['shop-0']}"),)
    md_staff = (("authorization", f"Bearer {keys['history-staff']}"),)
    rng = random.Random(23)
    async with connections(target) as channels:
        orders = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        stock = [inventory_service_pb2_grpc.InventoryServiceStub(c) for c in channels]
        listed = await orders[0].ListOrders(
            order_service_pb2.ListOrdersRequest(page_size=500), metadata=md_shop
        )
        old = order_service_pb2.ListOrdersRequest(page_size=500)
        old.create_time_before.FromDatetime(datetime(2025, 3, 1, tzinfo=UTC))
        listed_old = await orders[0].ListOrders(old, metadata=md_shop)
        ids = [o.id for o in [*listed.orders, *listed_old.orders]]
        numbers = [o.client_order_id for o in [*listed.orders, *listed_old.orders]]
        first = await orders[0].GetOrder(
            order_service_pb2.GetOrderRequest(id=ids[-1]), metadata=md_shop
        )
        first_event = first.order.events[0].id
        listings = [
            order_service_pb2.ListOrdersRequest(page_size=50),
            order_service_pb2.ListOrdersRequest(page_size=50, state=order_pb2.ORDER_STATE_ON_HOLD),
            order_service_pb2.ListOrdersRequest(page_size=50, customer_account="C-shop-1-009"),
            order_service_pb2.ListOrdersRequest(
                page_size=50, order_by=order_service_pb2.LIST_ORDERS_ORDER_BY_UPDATE_TIME
            ),
        ]
        codes = SKUS[:: len(SKUS) // 100][:100]
        submitted = 0

        async def mixed(n: int, lane: int) -> object:
            nonlocal submitted
            kind = n % 8
            if kind in (0, 4):
                submitted += 1
                customer = f"C-shop-0-{n % CUSTOMERS_PER_CLIENT:03d}"
                sku = rng.choice(HOT) if n % 5 == 0 else rng.choice(SKUS)
                return await orders[lane].SubmitOrder(
                    order_service_pb2.SubmitOrderRequest(
                        request_id=str(uuid.uuid4()),
                        order_xml=order_xml(f"SOAK-{uuid.uuid4().hex[:12]}", customer, sku, 1),
                    ),
                    metadata=md_shop,
                )
            if kind in (1, 5):
                return await orders[lane].GetOrder(
                    order_service_pb2.GetOrderRequest(id=rng.choice(ids)), metadata=md_shop
                )
            if kind == 2:
                return await orders[lane].ListOrders(
                    listings[(n // 8) % len(listings)], metadata=md_staff
                )
            if kind == 3:
                return await stock[lane].GetStockLevels(
                    inventory_service_pb2.GetStockLevelsRequest(codes=codes), metadata=md_shop
                )
            if kind == 6:
                return await orders[lane].GetOrderDocument(
                    order_service_pb2.GetOrderDocumentRequest(id=rng.choice(ids)),
                    metadata=md_shop,
                )
            return await orders[lane].GetOrder(
                order_service_pb2.GetOrderRequest(client_order_id=rng.choice(numbers)),
                metadata=md_shop,
            )

        events_seen = 0
        resumed = 0

        async def follow() -> None:  # a long-lived watcher reading every new event
            nonlocal events_seen
            async for _ in orders[0].WatchOrderEvents(
                order_service_pb2.WatchOrderEventsRequest(), metadata=md_staff
            ):
                events_seen += 1

        async def resume_now_and_then() -> None:  # a watcher back after a restart
            nonlocal resumed
            while True:
                await resumed_watch(target, md_shop, first_event)
                resumed += 1
                await asyncio.sleep(2)

        background = [asyncio.create_task(follow()), asyncio.create_task(resume_now_and_then())]
        samples: list[list[int]] = []
        calls = 0
        started = time.perf_counter()
        while time.perf_counter() - started < seconds + every:  # + the warm-up
            run = await run_load(mixed, concurrency=16, seconds=every, lanes=len(channels))
            calls += run.calls
            samples.append([round(rss_kb(pid) / 1024) for pid in pids])
            print(
                json.dumps({"soak_s": round(time.perf_counter() - started), "rss_mb": samples[-1]}),
                flush=True,
            )
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
    measured = samples[1:]  # after the warm-up
    growth = [
        round((worker[-1] - worker[0]) / worker[0], 3)
        for worker in (list(column) for column in zip(*measured, strict=True))
    ]
    return {
        "soak_s": round(seconds),
        "soak_calls": calls,
        "soak_submitted": submitted,
        "soak_events_followed": events_seen,
        "soak_watches_resumed": resumed,
        "soak_rss_mb": measured,
        "soak_rss_growth": growth,
    }


CLIENT_ROLES = {name: "website" for name in CLIENTS} | {"history-staff": "manager"}


def run_size(
    kind: str, size: int, seconds: float, workers: int, reads: int, soak_s: float = 0
) -> dict[str, Any]:
    with seeded_database(kind, catalog(), CLIENT_ROLES) as (url, keys):
        started = time.perf_counter()
        if size:
            Filler(url, client_ids(url)).fill(size)
        vacuum(url)
        filled = time.perf_counter() - started
        size_bytes = database_bytes(url)
        with server(url, workers=str(workers)) as target:
            result = asyncio.run(measure(target, keys, size, seconds, reads))
            pids = server_workers(target.pid) or [target.pid]  # one worker: the process itself
            result["rss_mb"] = [round(rss_kb(pid) / 1024) for pid in pids]
            if soak_s:
                result |= asyncio.run(soak(target, keys, pids, soak_s, every=60))
        result["database"] = kind
        result["fill_s"] = round(filled, 1)
        result["bytes_per_order"] = round(size_bytes / size) if size else 0
        result["database_mb"] = round(size_bytes / 2**20)
    return result


def run_rounds(
    kind: str, sizes: list[int], rounds: int, seconds: float, workers: int, reads: int
) -> list[dict[str, Any]]:
    """Every size measured `rounds` times, the sizes interleaved and their order rotated each
    round, so a machine that is busier for a while weighs on every size alike. Each size is
    filled once; each measurement runs on a fresh copy of it, so every round starts from the
    same stored history rather than from it plus the orders the rounds before submitted.
    Prints each measurement as it ends; returns them all."""
    results: list[dict[str, Any]] = []
    with ExitStack() as stack:
        filled: dict[int, tuple[str, dict[str, str], int]] = {}
        for size in sizes:
            url, keys = stack.enter_context(seeded_database(kind, catalog(), CLIENT_ROLES))
            if size:
                Filler(url, client_ids(url)).fill(size)
            vacuum(url)
            filled[size] = (url, keys, database_bytes(url))
        for round_ in range(rounds):
            turn = round_ % len(sizes)
            for size in sizes[turn:] + sizes[:turn]:
                url, keys, size_bytes = filled[size]
                with copy_of(url) as copy, server(copy, workers=str(workers)) as target:
                    result = asyncio.run(measure(target, keys, size, seconds, reads))
                    pids = server_workers(target.pid) or [target.pid]
                    result["rss_mb"] = [round(rss_kb(pid) / 1024) for pid in pids]
                result |= {
                    "database": kind,
                    "round": round_ + 1,
                    "bytes_per_order": round(size_bytes / size) if size else 0,
                }
                print(json.dumps(result), flush=True)
                results.append(result)
    return results


def _spread(values: list[float]) -> dict[str, Any]:
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "each": [round(v, 3) for v in values],
    }


def summarise(results: list[dict[str, Any]], sizes: list[int]) -> dict[str, Any]:
    """Per round, the largest size against the smallest (intake, read p99) and against the
    middle one (read p99: at 0 several lists are empty); the median over the rounds, with the
    lowest and highest. The issue's bounds are judged on the medians."""
    largest, smallest = max(sizes), min(sizes)
    middle = sorted(sizes)[len(sizes) // 2] if len(sizes) > 2 else smallest
    by_round: dict[int, dict[int, dict[str, Any]]] = {}
    for result in results:
        by_round.setdefault(result["round"], {})[result["stored"]] = result
    intake: dict[str, list[float]] = {"SubmitOrder": [], "SubmitOrders (8 streams)": []}
    p99_small: dict[str, list[float]] = {}
    p99_middle: dict[str, list[float]] = {}
    for measured in by_round.values():
        big, small, mid = measured[largest], measured[smallest], measured[middle]
        intake["SubmitOrder"].append(big["submit_ratio"] / small["submit_ratio"])
        intake["SubmitOrders (8 streams)"].append(big["stream_ratio"] / small["stream_ratio"])
        for read, (_, p99) in big["latency_ms"].items():
            p99_small.setdefault(read, []).append(p99 / small["latency_ms"][read][1])
            p99_middle.setdefault(read, []).append(p99 / mid["latency_ms"][read][1])
    return {
        "database": results[0]["database"],
        "rounds": len(by_round),
        f"intake at {largest} / at {smallest}": {k: _spread(v) for k, v in intake.items()},
        f"read p99 at {largest} / at {middle}": {k: _spread(v) for k, v in p99_middle.items()},
        f"read p99 at {largest} / at {smallest}": {k: _spread(v) for k, v in p99_small.items()},
    }


def _cell(spread: dict[str, Any]) -> str:
    return f"**{spread['median']:.2f}** ({spread['min']:.2f} to {spread['max']:.2f})"


def report(summaries: list[dict[str, Any]]) -> str:
    """The round summaries of one or more runs as one markdown table: a row per figure, for
    each database its ratio against the middle size and against the smallest, each the median
    of the rounds in bold with the lowest and highest beside it."""
    columns: list[tuple[str, dict[str, Any]]] = []
    for summary in summaries:
        for key in (k for k in summary if k.startswith("read p99 at")):
            columns.append((f"{summary['database']} {key.removeprefix('read p99 ')}", summary[key]))
    intake = [
        (s["database"], next(v for k, v in s.items() if k.startswith("intake"))) for s in summaries
    ]
    lines = [
        "| intake at the largest ÷ at the smallest | " + " | ".join(db for db, _ in intake) + " |",
        "|---|" + "---:|" * len(intake),
    ]
    for name in intake[0][1]:
        lines.append(f"| {name} | " + " | ".join(_cell(by[name]) for _, by in intake) + " |")
    lines += [
        "",
        "| read p99 | " + " | ".join(title for title, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for read in columns[0][1]:
        lines.append(f"| {read} | " + " | ".join(_cell(by[read]) for _, by in columns) + " |")
    return "\n".join(lines)


# --- storage: bytes per order, documents as stored before 0011, compressed, pruned ------------


def storage(kind: str, count: int, delivered_days: int, cancelled_days: int) -> dict[str, Any]:
    """Database bytes per stored order (the empty database with its catalog subtracted, free
    space compacted): documents uncompressed as before, compressed as stored now, and after
    `ordergate prune` of DELIVERED and CANCELLED orders finished that many days ago."""
    result: dict[str, Any] = {"database": kind, "orders": count}
    for compress in (False, True):
        with seeded_database(kind, catalog(), CLIENT_ROLES) as (url, _keys):
            compact(url)
            empty = database_bytes(url)
            Filler(url, client_ids(url), compress=compress).fill(count)
            compact(url)
            label = "compressed" if compress else "uncompressed"
            result[f"bytes_per_order_{label}"] = round((database_bytes(url) - empty) / count)
            if not compress:
                continue
            report = ordergate(
                url,
                "prune",
                "--delivered-days",
                str(delivered_days),
                "--cancelled-days",
                str(cancelled_days),
            )
            compact(url)
            result["bytes_per_order_pruned"] = round((database_bytes(url) - empty) / count)
            result["prune_report"] = report.strip().splitlines()
    result["pruned_after_days"] = {"DELIVERED": delivered_days, "CANCELLED": cancelled_days}
    return result


# --- growth: how a new user meets it -----------------------------------------------------------


def growth(kind: str, total: int, chunk: int, workers: int) -> list[dict[str, Any]]:
    rows = []
    with seeded_database(kind, catalog(), CLIENT_ROLES) as (url, keys):
        md = (("authorization", f"Bearer {keys['shop-0']}"),)
        with server(url, workers=str(workers)) as target:

            async def run() -> None:
                async with connections(target) as channels:
                    stubs = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
                    sent = 0
                    while sent < total:
                        started = time.perf_counter()
                        count = 0
                        while count < chunk:
                            result = await run_streams(
                                stubs, md, streams=8, window=4, seconds=2, on_reply=_ignore
                            )
                            count += result.calls
                        elapsed = time.perf_counter() - started
                        sent += count
                        started = time.perf_counter()
                        await stubs[0].ListOrders(
                            order_service_pb2.ListOrdersRequest(page_size=50), metadata=md
                        )
                        listed_ms = (time.perf_counter() - started) * 1000
                        row = {
                            "database": kind,
                            "stored": sent,
                            "orders_per_s": round(count / elapsed),
                            "list_orders_ms": round(listed_ms, 1),
                            **seq_scans(url),
                        }
                        rows.append(row)
                        print(json.dumps(row), flush=True)

            asyncio.run(run())
    return rows


def seq_scans(url: str) -> dict[str, int]:
    """PostgreSQL's count of sequential scans of the order tables so far."""
    if make_url(url).get_backend_name() != "postgresql":
        return {}
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, seq_scan FROM pg_stat_user_tables WHERE relname IN "
                    "('orders', 'order_lines', 'order_events', 'submissions')"
                )
            )
            return {f"seq_scans_{name}": int(count) for name, count in rows}
    finally:
        engine.dispose()


def _kinds(value: str) -> Iterator[str]:
    yield from (["sqlite", "postgres"] if value == "both" else [value])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "mode", nargs="?", default="sizes", choices=["sizes", "growth", "storage", "report"]
    )
    parser.add_argument("files", nargs="*", help="report: the saved output of --rounds runs")
    parser.add_argument("--db", default="both", choices=["sqlite", "postgres", "both"])
    parser.add_argument("--sizes", default="0,100000,1000000")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--reads", type=int, default=200, help="calls per read measured")
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--orders", type=int, default=80_000)
    parser.add_argument("--chunk", type=int, default=16_000)
    parser.add_argument("--delivered-days", type=int, default=365, help="storage: prune age")
    parser.add_argument("--cancelled-days", type=int, default=90, help="storage: prune age")
    parser.add_argument(
        "--soak", type=float, default=0, help="seconds of mixed traffic at the largest size"
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure every size this many times, interleaved, and print the medians",
    )
    args = parser.parse_args()
    if args.rounds > 1 and args.soak:
        parser.error("--soak runs in a single pass (--rounds 1)")
    if args.files and args.mode != "report":
        parser.error("only report takes files")
    if args.mode == "report":
        lines = (line for name in args.files for line in Path(name).read_text().splitlines())
        summaries = [json.loads(line)["summary"] for line in lines if '"summary"' in line]
        if not summaries:
            parser.error("report: no summary line in the files (run with --rounds 2 or more)")
        print(report(summaries))
        return
    for kind in _kinds(args.db):
        if args.mode == "growth":
            growth(kind, args.orders, args.chunk, args.workers)
            continue
        if args.mode == "storage":
            print(json.dumps(storage(kind, args.orders, args.delivered_days, args.cancelled_days)))
            continue
        sizes = [int(s) for s in args.sizes.split(",")]
        if args.rounds > 1:
            results = run_rounds(kind, sizes, args.rounds, args.seconds, args.workers, args.reads)
            print(json.dumps({"summary": summarise(results, sizes)}), flush=True)
            continue
        for size in sizes:
            soak_s = args.soak if size == max(sizes) else 0
            result = run_size(kind, size, args.seconds, args.workers, args.reads, soak_s)
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
