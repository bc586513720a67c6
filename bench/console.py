"""Whether people browsing the console take throughput from the API's callers.

    python -m bench.console [--db sqlite|postgres|both] [--seconds 8] [--pairs 3]

One `ordergate serve` (one worker per CPU) with its HTTP listener and console, on a seeded
database with held orders in it; a staff account made with `ordergate users create`. Phases:
gRPC Health/Check (the baseline), then pairs of SubmitOrder phases at --concurrency, one
without anyone in the console and one with a person browsing it: signed in, they open the held
orders, a held order, a stock search and the integration health page in turn, a page every
--think seconds (2: a person who reads little of each page; 0.5 is four times that), from a
client in this process. The pairs alternate, so
the machine's drift falls on both sides alike; the figure is the with/without ratio of their
summed SubmitOrder rates (the issue's bar: at least 0.95).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import time
import uuid

import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from . import submit_orders
from .harness import (
    Target,
    analyze,
    connections,
    free_port,
    ordergate,
    run_load,
    seeded_database,
    server,
)

PERSON = "bench-ana"


def _held_order(n: int) -> bytes:
    """An order held for its unknown product (the queue a person browses)."""
    return submit_orders.order(n).replace(b"<Sku>B-", b"<Sku>NO-SUCH-", 1)


class Person:
    """A signed-in person clicking through the console, one page every `think` seconds."""

    def __init__(self, http: str, password: str, think: float) -> None:
        self._client = httpx.AsyncClient(base_url=http, timeout=30)
        self._password = password
        self._think = think
        self.pages = 0

    async def sign_in(self) -> None:
        form = await self._client.get("/console/sign-in")
        found = re.search(r'name="nonce" value="([^"]+)"', form.text)
        assert found is not None
        nonce = form.cookies["ordergate_console_sign_in"]
        signed = await self._client.post(
            "/console/sign-in",
            data={"nonce": found.group(1), "username": PERSON, "password": self._password},
            headers={"cookie": f"ordergate_console_sign_in={nonce}"},
        )
        assert signed.status_code == 303, signed.text
        # The cookie is Secure; httpx keeps such cookies to https, so it is sent by hand.
        token = signed.cookies["ordergate_console"]
        self._client.headers["cookie"] = f"ordergate_console={token}"

    async def browse(self, until: float) -> None:
        held = await self._client.get("/console/held")
        assert held.status_code == 200, held.status_code
        orders = re.findall(r'href="/console/orders/([0-9a-f-]{36})"', held.text)
        assert len(orders) >= 3, "the held orders are on the page"
        pages = ["/console/held", *(f"/console/orders/{o}" for o in orders[:3])]
        pages += ["/console/stock?code=B-0001", "/console/health"]
        n = 0
        while time.perf_counter() < until:
            answer = await self._client.get(pages[n % len(pages)])
            assert answer.status_code == 200, (pages[n % len(pages)], answer.status_code)
            self.pages += 1
            n += 1
            await asyncio.sleep(self._think)

    async def close(self) -> None:
        await self._client.aclose()


async def measure(
    target: Target, url: str, http: str, key: str, password: str, args: argparse.Namespace
) -> tuple[float, list[tuple[float, float, int]]]:
    metadata = (("authorization", f"Bearer {key}"),)
    async with connections(target) as channels:
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        orders = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        check = health_pb2.HealthCheckRequest()
        lanes = len(channels)

        async def health_call(n: int, lane: int) -> object:
            return await health[lane].Check(check)

        async def submit_call(n: int, lane: int) -> object:
            reply = await orders[lane].SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=submit_orders.order(n)
                ),
                metadata=metadata,
            )
            assert reply.order.state == order_pb2.ORDER_STATE_ACCEPTED
            return reply

        for n in range(20):  # the queue the person looks at
            held = await orders[0].SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=_held_order(10**9 + n)
                ),
                metadata=metadata,
            )
            assert held.order.state == order_pb2.ORDER_STATE_ON_HOLD
        person = Person(http, password, args.think)
        await person.sign_in()
        await run_load(health_call, concurrency=args.concurrency, seconds=1, lanes=lanes)
        await run_load(submit_call, concurrency=args.concurrency, seconds=1, lanes=lanes)
        analyze(url)  # statistics on the orders now there, as on a running deployment
        baseline = await run_load(
            health_call, concurrency=args.concurrency, seconds=args.seconds, lanes=lanes
        )
        pairs = []
        for _ in range(args.pairs):
            alone = await run_load(
                submit_call, concurrency=args.concurrency, seconds=args.seconds, lanes=lanes
            )
            before = person.pages
            browsing = asyncio.create_task(person.browse(time.perf_counter() + args.seconds))
            shared = await run_load(
                submit_call, concurrency=args.concurrency, seconds=args.seconds, lanes=lanes
            )
            await browsing
            pairs.append((alone.rate, shared.rate, person.pages - before))
        await person.close()
        return baseline.rate, pairs


def bench(kind: str, args: argparse.Namespace) -> tuple[float, list[tuple[float, float, int]]]:
    port = free_port()
    catalog = submit_orders.catalog()
    with seeded_database(kind, catalog, {"bench-shop": "website"}) as (url, keys):
        password = ordergate(url, "users", "create", PERSON, "--role", "manager").strip()
        with server(url, workers=str(args.workers), http_listen=f"127.0.0.1:{port}") as target:
            http = f"http://127.0.0.1:{port}"
            return asyncio.run(measure(target, url, http, keys["bench-shop"], password, args))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--think", type=float, default=2, help="seconds between pages")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"concurrency {args.concurrency}, {args.seconds:g} s per phase, {args.pairs} pairs, "
        f"a page every {args.think:g} s, {args.workers} server worker(s)"
    )
    print(
        "| database | Health/Check calls/s | SubmitOrder alone, orders/s (ratio) "
        "| with a person browsing, orders/s (ratio) | pages seen | with / alone |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for kind in kinds:
        baseline, pairs = bench(kind, args)
        alone = sum(a for a, _, _ in pairs) / len(pairs)
        shared = sum(s for _, s, _ in pairs) / len(pairs)
        pages = sum(p for _, _, p in pairs)
        print(
            f"| {kind} | {baseline:.0f} | {alone:.0f} ({alone / baseline:.3f}) "
            f"| {shared:.0f} ({shared / baseline:.3f}) | {pages} | {shared / alone:.3f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
