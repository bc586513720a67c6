"""What the HTTP listener costs against gRPC, on the same server and in the same run.

    python -m bench.over_http [--db sqlite|postgres|both] [--seconds 8] [--concurrency 32]

One `ordergate serve` (one worker per CPU) with its HTTP listener, on a seeded database; the
callers in this process. Phases, back to back: gRPC Health/Check (the baseline every figure is
a ratio of), GetStockLevels for 100 SKUs over gRPC, Connect JSON and Connect binary, a 10-line
order over gRPC SubmitOrder and over `POST /v1/orders`.

HTTP calls go over keep-alive connections, one per caller (HTTP/1.1: one call at a time per
connection), made by a minimal client on asyncio streams: a general client such as httpx costs
several times the server's work per call and, on a two-core machine, would measure itself. The
callers share the machine with the server (2 CPUs here), so besides calls/s and their ratio to
the baseline, each phase's server CPU per call (the server's process tree, from /proc; the
database's too on PostgreSQL) is printed: that is what the transport costs the server, whatever
the load generator costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import uuid

from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    order_pb2,
    order_service_pb2,
    order_service_pb2_grpc,
)

from . import submit_orders
from .harness import (
    CONNECTIONS,
    LoadResult,
    Target,
    busy_share,
    connections,
    cpu_per_call,
    cpu_seconds,
    free_port,
    machine_ticks,
    run_load,
    seeded_database,
    server,
)

PHASES = (
    "gRPC Health/Check",
    "GetStockLevels (100 SKUs), gRPC",
    "GetStockLevels (100 SKUs), Connect JSON",
    "GetStockLevels (100 SKUs), Connect binary",
    "10-line order, gRPC SubmitOrder",
    "10-line order, POST /v1/orders",
)


class _HttpCallers:
    """HTTP/1.1 over keep-alive connections: a caller takes an idle one (or opens one) for
    each call, so there are as many as callers at once. A request is written in one piece, the
    answer read by its Content-Length: just what the server's answers need, not a general
    client."""

    def __init__(self, host: str, port: int, key: str) -> None:
        self._address = (host, port)
        self._auth = f"Bearer {key}"
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> _HttpCallers:
        return self

    async def __aexit__(self, *exc: object) -> None:
        for _reader, writer in self._idle:
            writer.close()

    async def post(self, path: str, content_type: str, body: bytes) -> tuple[int, bytes]:
        head = (
            f"POST {path} HTTP/1.1\r\nHost: bench\r\nAuthorization: {self._auth}\r\n"
            f"Content-Type: {content_type}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        status_line = b""
        while not status_line:  # an idle connection the server closed: a new one
            if self._idle:
                reader, writer = self._idle.pop()
            else:
                reader, writer = await asyncio.open_connection(*self._address)
            writer.write(head + body)
            status_line = await reader.readline()
        headers = {}
        while (line := await reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        if headers.get(b"transfer-encoding") == b"chunked":
            answer = b""
            while size := int((await reader.readline()).strip(), 16):
                chunk = await reader.readexactly(size + 2)  # the chunk and its CRLF
                answer += chunk[:-2]
            await reader.readline()  # the empty line after the last chunk
        else:
            answer = await reader.readexactly(int(headers.get(b"content-length", b"0")))
        self._idle.append((reader, writer))
        return int(status_line.split()[1]), answer


async def measure(
    target: Target, url: str, http: str, key: str, seconds: float, concurrency: int
) -> list[tuple[LoadResult, float, float]]:
    metadata = (("authorization", f"Bearer {key}"),)
    stock_request = inventory_service_pb2.GetStockLevelsRequest(codes=submit_orders.SKUS)
    stock_json = json.dumps({"codes": submit_orders.SKUS}).encode()
    host, _, port = http.rpartition("//")[2].partition(":")
    async with connections(target) as channels, _HttpCallers(host, int(port), key) as client:
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        inventory = [inventory_service_pb2_grpc.InventoryServiceStub(c) for c in channels]
        orders = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]
        check = health_pb2.HealthCheckRequest()

        async def health_call(n: int, lane: int) -> object:
            return await health[lane].Check(check)

        async def stock_grpc(n: int, lane: int) -> object:
            reply = await inventory[lane].GetStockLevels(stock_request, metadata=metadata)
            assert len(reply.items) == len(submit_orders.SKUS)
            return reply

        async def stock_connect(n: int, lane: int) -> object:
            status, body = await client.post(
                "/ordergate.v1.InventoryService/GetStockLevels",
                "application/json",
                stock_json,
            )
            assert status == 200
            assert len(json.loads(body)["items"]) == len(submit_orders.SKUS)
            return body

        async def stock_connect_binary(n: int, lane: int) -> object:
            status, body = await client.post(
                "/ordergate.v1.InventoryService/GetStockLevels",
                "application/proto",
                stock_request.SerializeToString(),
            )
            assert status == 200
            reply = inventory_service_pb2.GetStockLevelsResponse.FromString(body)
            assert len(reply.items) == len(submit_orders.SKUS)
            return reply

        async def submit_grpc(n: int, lane: int) -> object:
            reply = await orders[lane].SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=submit_orders.order(n)
                ),
                metadata=metadata,
            )
            assert reply.order.state == order_pb2.ORDER_STATE_ACCEPTED
            return reply

        async def submit_http(n: int, lane: int) -> object:
            status, body = await client.post(
                "/v1/orders", "application/xml", submit_orders.order(n + 10**9)
            )
            assert status == 201, body
            return body

        lanes = len(channels)
        calls = (
            health_call,
            stock_grpc,
            stock_connect,
            stock_connect_binary,
            submit_grpc,
            submit_http,
        )
        for call in calls:  # warm up: connections open, code paths taken
            await run_load(call, concurrency=concurrency, seconds=0.5, lanes=lanes)
        measured = []
        for call in calls:
            ticks, cpu = machine_ticks(), cpu_seconds(target.pid, url)
            result = await run_load(call, concurrency=concurrency, seconds=seconds, lanes=lanes)
            used = cpu_per_call(cpu, cpu_seconds(target.pid, url), result.calls)
            server_us = used["server"] + used["database"]
            measured.append((result, busy_share(ticks, machine_ticks()), server_us))
        return measured


def bench(
    kind: str, seconds: float, concurrency: int, workers: int
) -> list[tuple[LoadResult, float, float]]:
    port = free_port()
    with (
        seeded_database(kind, submit_orders.catalog(), {"bench-shop": "website"}) as (url, keys),
        server(url, workers=str(workers), http_listen=f"127.0.0.1:{port}") as target,
    ):
        http = f"http://127.0.0.1:{port}"
        return asyncio.run(measure(target, url, http, keys["bench-shop"], seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=8)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"concurrency {args.concurrency} over {CONNECTIONS} connections, {args.seconds:g} s per "
        f"phase, {args.workers} server worker(s)"
    )
    print(
        "| database | phase | calls/s | ratio to Health/Check | server CPU per call, µs "
        "| p50 ms | p99 ms | machine busy |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        measured = bench(kind, args.seconds, args.concurrency, args.workers)
        baseline = measured[0][0].rate
        for name, (result, busy, server_us) in zip(PHASES, measured, strict=True):
            print(
                f"| {kind} | {name} | {result.rate:.0f} | {result.rate / baseline:.3f} | "
                f"{server_us:.0f} | {result.percentile(50):.1f} | {result.percentile(99):.1f} "
                f"| {busy:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
