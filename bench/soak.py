"""A bounded soak: 60 s of mixed load on `ordergate serve`, then a consistency check.

    python -m bench.soak [--db sqlite|postgres|both] [--seconds 60] [--workers 2]

For each database: a fresh database with the bench catalog, `ordergate serve --workers N`, and
from this process at once, for the whole period:
- submitters: 10-line orders; every 10th is sent twice with the same request_id (a retry), and
  every 7th has no phone (held, PHONE_MISSING);
- bulk senders: the same orders over SubmitOrders streams with 8 unanswered, every 10th twice
  in a row on the stream; each stream is cut off after about 2 s with orders still in the
  server (a client going away), and its unanswered orders are sent again on the next one;
- a manager releasing held orders from the exception queue (ListHeldOrders + ReleaseOrder);
- storefront reads: GetStockLevels (100 SKUs) and GetCustomerPrices (20 lines);
- watches: WatchOrderEvents and WatchStockLevels streams, reopened every few seconds.
Then it reports calls by kind, unexpected errors (anything but a deliberate answer), each
worker's memory (RSS) at the start and the end, and checks the database:
- allocated stock = the sum of the lines of accepted, undispatched orders, per SKU and location;
- every (client, request_id) maps to at most one order.
A repeated request_id must answer with the order its first answer gave (replayed), on a call or
a stream. The script exits non-zero if an error was unexpected or a check fails.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
import time
import uuid
from collections import Counter, deque
from collections.abc import Iterator
from contextlib import suppress
from itertools import count
from pathlib import Path

import grpc
from sqlalchemy import create_engine, text

from ordergate.v1 import exception_queue_service_pb2 as queue_pb
from ordergate.v1 import exception_queue_service_pb2_grpc as queue_grpc
from ordergate.v1 import inventory_service_pb2 as inventory_pb
from ordergate.v1 import inventory_service_pb2_grpc as inventory_grpc
from ordergate.v1 import order_service_pb2 as order_pb
from ordergate.v1 import order_service_pb2_grpc as order_grpc
from ordergate.v1 import pricing_service_pb2 as pricing_pb
from ordergate.v1 import pricing_service_pb2_grpc as pricing_grpc

from .harness import seeded_database, server, server_workers
from .submit_orders import SKUS, catalog, order


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    return int(match.group(1)) if match else 0


class Soak:
    def __init__(self, target: str, shop: str, manager: str, seconds: float) -> None:
        self.target = target
        self.shop = (("authorization", f"Bearer {shop}"),)
        self.manager = (("authorization", f"Bearer {manager}"),)
        self.deadline = time.monotonic() + seconds
        self.calls: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.answered: dict[str, str] = {}  # request_id -> order id, from the bulk streams

    def running(self) -> bool:
        return time.monotonic() < self.deadline

    def failed(self, kind: str, error: grpc.RpcError) -> None:
        self.unexpected.append(f"{kind}: {error.code().name} {error.details()}")

    async def submitter(self, channel: grpc.aio.Channel, worker: int) -> None:
        stub = order_grpc.OrderServiceStub(channel)
        n = 0
        while self.running():
            n += 1
            payload = order(worker * 10_000_000 + n)
            if n % 7 == 0:
                payload = re.sub(rb"<Contact>.*?</Contact>", b"", payload)
            request = order_pb.SubmitOrderRequest(request_id=str(uuid.uuid4()), order_xml=payload)
            try:
                first = await stub.SubmitOrder(request, metadata=self.shop, timeout=30)
                self.calls["SubmitOrder"] += 1
                if n % 10 == 0:
                    again = await stub.SubmitOrder(request, metadata=self.shop, timeout=30)
                    self.calls["SubmitOrder (retry)"] += 1
                    if again.order.id != first.order.id or not again.replayed:
                        self.unexpected.append("a retry made a second order")
            except grpc.RpcError as error:
                self.failed("SubmitOrder", error)

    def bulk_orders(self, worker: int, n: int) -> list[order_pb.SubmitOrderRequest]:
        """The n-th order of a bulk sender: one request, or the same request twice."""
        payload = order(worker * 10_000_000 + n)
        if n % 7 == 0:
            payload = re.sub(rb"<Contact>.*?</Contact>", b"", payload)
        request = order_pb.SubmitOrderRequest(request_id=str(uuid.uuid4()), order_xml=payload)
        return [request, request] if n % 10 == 0 else [request]

    def bulk_answer(
        self, request: order_pb.SubmitOrderRequest, reply: order_pb.SubmitOrdersResponse
    ) -> None:
        if reply.request_id != request.request_id:
            self.unexpected.append("a stream answered out of order")
            return
        if reply.WhichOneof("result") != "response":
            self.unexpected.append(f"SubmitOrders item: {reply.error.code} {reply.error.reason}")
            return
        self.calls["SubmitOrders item"] += 1
        order_id = reply.response.order.id
        first = self.answered.get(request.request_id)
        if first is None:
            self.answered[request.request_id] = order_id
        elif first != order_id or not reply.response.replayed:
            self.unexpected.append("a repeated request_id made a second order")

    async def bulk_sender(self, channel: grpc.aio.Channel, worker: int) -> None:
        stub = order_grpc.OrderServiceStub(channel)
        numbers = count(1)
        again: list[order_pb.SubmitOrderRequest] = []  # unanswered when a stream was cut off
        while self.running():
            again = await self.bulk_stream(stub, worker, numbers, again, to_the_end=False)
        if again:  # the last leftovers, sent until each is answered: nothing is lost
            await self.bulk_stream(stub, worker, numbers, again, to_the_end=True)

    async def bulk_stream(
        self,
        stub: order_grpc.OrderServiceAsyncStub,
        worker: int,
        numbers: Iterator[int],
        resend: list[order_pb.SubmitOrderRequest],
        *,
        to_the_end: bool,
    ) -> list[order_pb.SubmitOrderRequest]:
        """One stream with 8 orders unanswered: `resend` first, then new ones, for about 2 s,
        and then cut off with orders in the server; or, `to_the_end`, only `resend`, every
        answer awaited. Returns what stayed unanswered."""
        to_send = deque(resend)
        in_flight: deque[order_pb.SubmitOrderRequest] = deque()
        # Fed with write() (no request iterator), which the stubs' types do not foresee.
        call = stub.SubmitOrders(metadata=self.shop, timeout=30)  # type: ignore[call-arg]
        room = asyncio.Semaphore(8)
        cut_off = time.monotonic() + 2.0

        async def receive() -> None:
            async for reply in call:
                self.bulk_answer(in_flight.popleft(), reply)
                room.release()

        receiver = asyncio.create_task(receive())
        try:
            while to_send if to_the_end else self.running() and time.monotonic() < cut_off:
                await room.acquire()
                if not to_send:
                    to_send.extend(self.bulk_orders(worker, next(numbers)))
                in_flight.append(to_send.popleft())
                await call.write(order_pb.SubmitOrdersRequest(order=in_flight[-1]))
            if to_the_end:
                await call.done_writing()
                await receiver
            else:  # the client goes away with orders in the server
                await asyncio.sleep(0.02)
                call.cancel()
                self.calls["SubmitOrders cut off"] += 1
                with suppress(asyncio.CancelledError):
                    await receiver
        except grpc.RpcError as error:
            self.failed("SubmitOrders", error)
            receiver.cancel()
        return [*in_flight, *to_send]  # sent again, with their request_ids

    async def releaser(self, channel: grpc.aio.Channel) -> None:
        queue = queue_grpc.ExceptionQueueServiceStub(channel)
        while self.running():
            try:
                held = await queue.ListHeldOrders(
                    queue_pb.ListHeldOrdersRequest(reason_code="PHONE_MISSING", page_size=20),
                    metadata=self.manager,
                    timeout=30,
                )
                self.calls["ListHeldOrders"] += 1
                for found in held.orders:
                    await queue.ReleaseOrder(
                        queue_pb.ReleaseOrderRequest(id=found.id, reason="phoned the customer"),
                        metadata=self.manager,
                        timeout=30,
                    )
                    self.calls["ReleaseOrder"] += 1
            except grpc.RpcError as error:
                self.failed("release", error)
            await asyncio.sleep(0.2)

    async def storefront(self, channel: grpc.aio.Channel) -> None:
        stock = inventory_grpc.InventoryServiceStub(channel)
        prices = pricing_grpc.PricingServiceStub(channel)
        while self.running():
            try:
                await stock.GetStockLevels(
                    inventory_pb.GetStockLevelsRequest(codes=SKUS), metadata=self.shop, timeout=30
                )
                self.calls["GetStockLevels"] += 1
                await prices.GetCustomerPrices(
                    pricing_pb.GetCustomerPricesRequest(
                        customer_account="BENCH",
                        items=[pricing_pb.PriceQuery(code=s, quantity=2) for s in SKUS[:20]],
                    ),
                    metadata=self.shop,
                    timeout=30,
                )
                self.calls["GetCustomerPrices"] += 1
            except grpc.RpcError as error:
                self.failed("storefront", error)

    async def watcher(self, channel: grpc.aio.Channel) -> None:
        orders = order_grpc.OrderServiceStub(channel)
        stock = inventory_grpc.InventoryServiceStub(channel)
        while self.running():
            events = orders.WatchOrderEvents(order_pb.WatchOrderEventsRequest(), metadata=self.shop)
            levels = stock.WatchStockLevels(
                inventory_pb.WatchStockLevelsRequest(codes=SKUS[:10]), metadata=self.shop
            )
            try:

                async def drain(stream: object, kind: str) -> None:
                    async for _ in stream:  # type: ignore[attr-defined]
                        self.calls[kind] += 1

                await asyncio.wait_for(
                    asyncio.gather(
                        drain(events, "order events seen"), drain(levels, "stock changes seen")
                    ),
                    timeout=min(5.0, max(0.1, self.deadline - time.monotonic())),
                )
            except TimeoutError:
                pass  # the watches are reopened on purpose
            except grpc.RpcError as error:
                self.failed("watch", error)
            finally:
                events.cancel()
                levels.cancel()
            self.calls["watches reopened"] += 1


async def run(target: str, shop: str, manager: str, seconds: float) -> Soak:
    soak = Soak(target, shop, manager, seconds)
    channels = [
        grpc.aio.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(4)
    ]
    try:
        await asyncio.gather(
            *(soak.submitter(channels[i % 4], i) for i in range(8)),
            *(soak.bulk_sender(channels[i % 4], 100 + i) for i in range(2)),
            soak.releaser(channels[0]),
            *(soak.storefront(channels[i % 4]) for i in range(4)),
            soak.watcher(channels[1]),
            soak.watcher(channels[2]),
        )
    finally:
        for channel in channels:
            await channel.close(None)
    return soak


def consistency(url: str) -> list[str]:
    """The checks; each returned line is a failure."""
    engine = create_engine(url)
    problems = []
    with engine.connect() as conn:
        drift = conn.execute(
            text(
                """
                SELECT s.sku, s.location, s.allocated, COALESCE(d.held, 0) AS held
                FROM stock s LEFT JOIN (
                    SELECT l.sku, o.allocation_location AS location, SUM(l.quantity) AS held
                    FROM orders o JOIN order_lines l ON l.order_seq = o.seq
                    WHERE o.state IN ('ACCEPTED', 'PICKING', 'PICKED', 'PACKED')
                    GROUP BY l.sku, o.allocation_location
                ) d ON d.sku = s.sku AND d.location = s.location
                WHERE s.allocated <> COALESCE(d.held, 0)
                """
            )
        ).all()
        problems += [
            f"allocated {r.allocated} but orders hold {r.held}: {r.sku}@{r.location}" for r in drift
        ]
        doubled = conn.execute(
            text(
                "SELECT client_id, request_id, COUNT(DISTINCT order_id) AS n FROM submissions "
                "GROUP BY client_id, request_id HAVING COUNT(DISTINCT order_id) > 1"
            )
        ).all()
        problems += [f"request_id {r.request_id} made {r.n} orders" for r in doubled]
    engine.dispose()
    return problems


def bench(kind: str, seconds: float, workers: int) -> bool:
    data = catalog()
    for customer in data["customers"]:
        customer["client"] = "bench-shop"  # its prices are for this website only
    clients = {"bench-shop": "website", "bench-mgr": "manager"}
    with seeded_database(kind, data, clients) as (url, keys):
        shop, manager = keys["bench-shop"], keys["bench-mgr"]
        with server(url, workers=str(workers)) as target:
            pids = server_workers(target.pid)
            before = {pid: _rss_kib(pid) for pid in pids}
            soak = asyncio.run(run(target, shop, manager, seconds))
            after = {pid: _rss_kib(pid) for pid in pids}
        problems = consistency(url)
    print(f"\n{kind}: {seconds:g} s, {workers} workers")
    for call, n in sorted(soak.calls.items()):
        print(f"  {call:24} {n:>8}  ({n / seconds:.0f}/s)")
    for pid in pids:
        print(f"  worker {pid}: RSS {before[pid] / 1024:.0f} MiB -> {after[pid] / 1024:.0f} MiB")
    print(f"  unexpected errors: {len(soak.unexpected)}")
    for line in soak.unexpected[:10]:
        print(f"    {line}")
    print(f"  consistency: {'ok' if not problems else 'FAILED'}")
    for line in problems[:10]:
        print(f"    {line}")
    return not soak.unexpected and not problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    results = [bench(kind, args.seconds, args.workers) for kind in kinds]
    sys.exit(0 if all(results) else 1)


if __name__ == "__main__":
    main()
