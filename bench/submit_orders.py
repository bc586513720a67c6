"""Accepted 10-line orders per second, next to the health-check rate of the same server.

    python -m bench.submit_orders [--db sqlite|postgres|both] [--seconds 10] [--concurrency 32]
                                  [--workers N] [--streams 8] [--window N] [--db-delay-ms D]

For each database: a fresh database with 100 SKUs in ample stock, `ordergate serve --workers N`
(default one per CPU), then from this process (grpc.aio client over several connections, so
that every worker gets some; same concurrency for both phases), after a second of each call and
statistics gathered (harness.analyze: PostgreSQL's plans as on a database that holds orders):
1. Health/Check for N seconds: the framework's ceiling on this machine, in this run;
2. SubmitOrder with valid 10-line orders for N seconds, each a new order id and request_id.
3. SubmitOrder again, paced at a steady 80% of the rate just measured, for its p99 latency;
4. SubmitOrders, the bulk stream a backlog is sent on: `--streams` streams (default one per
   connection), each keeping `--window` orders unanswered (default: the callers above shared
   out, so as many orders are in flight as in phase 2; 8 streams of 4 at concurrency 32), a
   new one sent as each is answered, as the SDK's `submit_orders` sends, for N seconds.
Prints calls/s, p50/p99 latency and the ratio orders/s : health checks/s for each.
With `--db-delay-ms D` the server reaches PostgreSQL through bench.latency_relay, D ms each way:
a database farther away than the same machine, such as another zone's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from .harness import (
    CONNECTIONS,
    LoadResult,
    Target,
    analyze,
    busy_share,
    connections,
    cpu_per_call,
    cpu_seconds,
    latency_relay,
    machine_ticks,
    run_load,
    run_paced,
    seeded_database,
    server,
)

SKUS = [f"B-{n:04d}" for n in range(100)]


def catalog() -> dict[str, list[dict[str, object]]]:
    return {
        "locations": [{"code": "DC", "name": "Bench DC", "priority": 1}],
        "products": [{"sku": sku, "name": f"Bench product {sku}"} for sku in SKUS],
        "stock": [{"sku": sku, "location": "DC", "on_hand": 1_000_000_000} for sku in SKUS],
        "customers": [{"account": "BENCH", "name": "Bench customer", "currency": "EUR"}],
    }


def order(n: int, lines: int = 10) -> bytes:
    body = "".join(
        f"<Line><LineNumber>{i + 1}</LineNumber><Sku>{SKUS[(n + i * 7) % len(SKUS)]}</Sku>"
        f"<Quantity>{1 + i % 3}</Quantity><UnitPrice>4.20</UnitPrice></Line>"
        for i in range(lines)
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?><Order xmlns="urn:ordergate:order:v1">'
        f"<OrderId>BENCH-{n}-{uuid.uuid4().hex[:8]}</OrderId><OrderDate>2026-11-23</OrderDate>"
        "<CustomerAccount>BENCH</CustomerAccount><Channel>web</Channel><Currency>EUR</Currency>"
        "<Delivery><Address><Name>Bench</Name><Street>Hafenstraße 1</Street><City>Hamburg</City>"
        "<PostalCode>20457</PostalCode><Country>DE</Country></Address>"
        "<Contact><Phone>+49 40 1234567</Phone></Contact></Delivery>"
        f"<Lines>{body}</Lines></Order>"
    ).encode()


@dataclass
class Usage:
    cpu_us: dict[str, float]  # CPU per call by process group
    busy: float  # how busy the machine was (0 to 1)


async def run_streams(
    stubs: Sequence[order_service_pb2_grpc.OrderServiceAsyncStub],
    metadata: tuple[tuple[str, str], ...],
    *,
    streams: int,
    window: int,
    seconds: float,
    on_reply: Callable[[order_service_pb2.SubmitOrdersResponse], None],
) -> LoadResult:
    """`streams` SubmitOrders streams, stream k on connection k % len(stubs), each keeping
    `window` orders unanswered (a new one sent as soon as one is answered), for `seconds`. Each
    order is timed from its write to its answer; each answer goes to `on_reply`."""
    latencies: list[float] = []
    per_lane = [0] * len(stubs)
    counter = iter(range(10**12))
    deadline = time.perf_counter() + seconds

    async def stream(lane: int) -> None:
        # Fed with write() (no request iterator), which the stubs' types do not foresee.
        call = stubs[lane].SubmitOrders(metadata=metadata)  # type: ignore[call-arg]
        room = asyncio.Semaphore(window)
        sent: deque[float] = deque()  # when each unanswered order was written, in order

        async def send() -> None:
            while time.perf_counter() < deadline:
                await room.acquire()
                sent.append(time.perf_counter())
                await call.write(
                    order_service_pb2.SubmitOrdersRequest(
                        order=order_service_pb2.SubmitOrderRequest(
                            request_id=str(uuid.uuid4()), order_xml=order(next(counter))
                        )
                    )
                )
            await call.done_writing()

        sender = asyncio.create_task(send())
        async for reply in call:  # answers come in the order sent
            latencies.append((time.perf_counter() - sent.popleft()) * 1000)
            per_lane[lane] += 1
            on_reply(reply)
            room.release()
        await sender
        if (code := await call.code()) != grpc.StatusCode.OK:
            raise RuntimeError(f"the stream ended with {code}")

    started = time.perf_counter()
    await asyncio.gather(*(stream(k % len(stubs)) for k in range(streams)))
    elapsed = time.perf_counter() - started
    return LoadResult(len(latencies), elapsed, latencies, per_lane)


async def measure(
    target: Target,
    database_url: str,
    key: str,
    seconds: float,
    concurrency: int,
    streams: tuple[int, int],
) -> tuple[LoadResult, LoadResult, LoadResult, LoadResult, int, dict[str, Usage]]:
    metadata = (("authorization", f"Bearer {key}"),)
    async with connections(target) as channels:
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        orders = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        check = health_pb2.HealthCheckRequest()

        async def health_call(n: int, lane: int) -> object:
            return await health[lane].Check(check)

        accepted = 0

        def count(answered: order_pb2.Order) -> None:
            nonlocal accepted
            accepted += answered.state == order_pb2.ORDER_STATE_ACCEPTED

        async def submit_call(n: int, lane: int) -> object:
            reply = await orders[lane].SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=order(n)
                ),
                metadata=metadata,
            )
            count(reply.order)
            return reply

        usage: dict[str, Usage] = {}  # where the CPU went in each measured phase

        async def measured(name: str, phase: Awaitable[LoadResult]) -> LoadResult:
            cpu, ticks = cpu_seconds(target.pid, database_url), machine_ticks()
            result = await phase
            usage[name] = Usage(
                cpu_per_call(cpu, cpu_seconds(target.pid, database_url), result.calls),
                busy_share(ticks, machine_ticks()),
            )
            return result

        lanes = len(channels)
        await run_load(health_call, concurrency=concurrency, seconds=1, lanes=lanes)  # warm up
        # Orders in the tables and statistics on them, as on a running deployment (analyze()).
        await run_load(submit_call, concurrency=concurrency, seconds=1, lanes=lanes)
        analyze(database_url)
        accepted = 0  # the measured phases' own
        baseline = await measured(
            "Health/Check",
            run_load(health_call, concurrency=concurrency, seconds=seconds, lanes=lanes),
        )
        submits = await measured(
            "SubmitOrder",
            run_load(submit_call, concurrency=concurrency, seconds=seconds, lanes=lanes),
        )
        # Latency where a service is run in practice: a steady 80% of the peak just measured,
        # each connection (so each worker) at 80% of what it served at that peak.
        paced = await measured(
            "SubmitOrder at 80% of peak",
            run_paced(
                submit_call,
                rate=0.8 * submits.rate,
                seconds=seconds,
                shares=submits.calls_per_lane,
            ),
        )
        # A backlog on the bulk stream: one call per stream, not per order (no call set-up,
        # authentication or per-call interceptors for each order).
        streamed = await measured(
            "SubmitOrders (stream)",
            run_streams(
                orders,
                metadata,
                streams=streams[0],
                window=streams[1],
                seconds=seconds,
                on_reply=lambda reply: count(reply.response.order),
            ),
        )
        return baseline, submits, paced, streamed, accepted, usage


def bench(
    kind: str,
    seconds: float,
    concurrency: int,
    workers: int,
    streams: tuple[int, int],
    db_delay_ms: float = 0,
) -> dict[str, object]:
    """One database's run; `streams` is (streams, orders unanswered on each) for phase 4;
    `db_delay_ms` holds PostgreSQL's traffic back that long each way (harness.latency_relay)."""
    with seeded_database(kind, catalog(), {"bench-shop": "website"}) as (url, keys):
        key = keys["bench-shop"]
        with (
            latency_relay(url, db_delay_ms) as served,
            server(served, workers=str(workers)) as target,
        ):
            baseline, submits, paced, streamed, accepted, usage = asyncio.run(
                measure(target, url, key, seconds, concurrency, streams)
            )
    made = submits.calls + paced.calls + streamed.calls
    assert accepted == made, f"{made - accepted} orders were not accepted"
    return {
        "database": kind,
        "health_checks_per_s": round(baseline.rate),
        "orders_per_s": round(submits.rate),
        "ratio": round(submits.rate / baseline.rate, 3),
        "p50_ms": round(submits.percentile(50), 1),
        "p99_ms": round(submits.percentile(99), 1),
        "health_p99_ms": round(baseline.percentile(99), 1),
        "paced_p99_ms": round(paced.percentile(99), 1),
        "stream_orders_per_s": round(streamed.rate),
        "stream_ratio": round(streamed.rate / baseline.rate, 3),
        "stream_p50_ms": round(streamed.percentile(50), 1),
        "stream_p99_ms": round(streamed.percentile(99), 1),
        "usage": usage,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--streams", type=int, default=CONNECTIONS)
    parser.add_argument("--window", type=int, default=0, help="default: concurrency / streams")
    parser.add_argument(
        "--db-delay-ms",
        type=float,
        default=0,
        help="PostgreSQL: hold its traffic back this long each way, as if it were farther away",
    )
    args = parser.parse_args()
    streams = (args.streams, args.window or max(1, args.concurrency // args.streams))
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"10-line orders, concurrency {args.concurrency} over {CONNECTIONS} connections, "
        f"{args.seconds:g} s per phase, {args.workers} server worker(s)"
        + (f", PostgreSQL {args.db_delay_ms:g} ms farther each way" if args.db_delay_ms else "")
    )
    print(
        "| database | Health/Check calls/s | accepted orders/s | ratio | p50 ms | p99 ms "
        "| p99 ms at 80% of peak |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    results = []
    for kind in kinds:
        r = bench(kind, args.seconds, args.concurrency, args.workers, streams, args.db_delay_ms)
        results.append(r)
        print(
            f"| {r['database']} | {r['health_checks_per_s']} | {r['orders_per_s']} | "
            f"{r['ratio']} | {r['p50_ms']} | {r['p99_ms']} | {r['paced_p99_ms']} |",
            flush=True,
        )
    print()
    print(
        f"The same orders over SubmitOrders streams ({streams[0]} streams, {streams[1]} "
        "unanswered on each), against the same Health/Check rate"
    )
    print("| database | accepted orders/s | ratio | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        print(
            f"| {r['database']} | {r['stream_orders_per_s']} | {r['stream_ratio']} | "
            f"{r['stream_p50_ms']} | {r['stream_p99_ms']} |"
        )
    # Where the two cores went: the ratio is about (CPU per health check) : (CPU per order),
    # all processes on the machine included (bench/README.md); and whether a phase kept them
    # busy at all (if not, its callers set its rate, not the server).
    print()
    print("CPU per call, microseconds, by process (server workers, PostgreSQL backends, this")
    print("load generator), and how busy the machine's CPUs were, in each phase")
    print("| database | phase | server | database | load generator | total | machine busy |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in results:
        for phase, used in r["usage"].items():  # type: ignore[attr-defined]
            cpu = used.cpu_us
            print(
                f"| {r['database']} | {phase} | {cpu['server']:.0f} | "
                f"{cpu['database']:.0f} | {cpu['load generator']:.0f} | "
                f"{sum(cpu.values()):.0f} | {used.busy:.0%} |"
            )


if __name__ == "__main__":
    main()
