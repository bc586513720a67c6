"""A backlog of dropped order files imported per second, next to SubmitOrder one at a time.

    python -m bench.file_drop [--db sqlite|postgres|both] [--files 1000]

For each database: a fresh database with 100 SKUs in ample stock, then
1. baseline: `ordergate serve` in its own process, and from this process N SubmitOrder calls one
   after another (the poller also takes files one at a time), each a new 10-line order;
2. the same number of 10-line order files dropped in one client's inbox, then one pass of the
   poller (in this process, on its own database connection) over that backlog, timed from the
   first file read to the last file moved out.
Prints files/s, the baseline's orders/s and the ratio files/s : sequential SubmitOrder calls/s.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from pathlib import Path

import grpc

from ordergate.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc
from ordergate_server.filedrop import DropSettings, FilePoller
from ordergate_server.storage import open_database

from .harness import LoadResult, run_load, seeded_database, server
from .submit_orders import catalog, order

CLIENT = "bench-shop"


async def sequential_submits(target: str, key: str, count: int) -> LoadResult:
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        orders = order_service_pb2_grpc.OrderServiceStub(channel)
        accepted = 0
        started = time.perf_counter()
        latencies = []
        for n in range(count):
            t0 = time.perf_counter()
            reply = await orders.SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=order(n)
                ),
                metadata=metadata,
            )
            latencies.append((time.perf_counter() - t0) * 1000)
            accepted += reply.order.state == order_pb2.ORDER_STATE_ACCEPTED
        assert accepted == count, f"{count - accepted} orders were not accepted"
        return LoadResult(count, time.perf_counter() - started, latencies, [count])


async def warm_up(target: str, key: str) -> None:
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        orders = order_service_pb2_grpc.OrderServiceStub(channel)

        async def call(n: int, lane: int) -> object:
            return await orders.SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=order(10**6 + n)
                ),
                metadata=metadata,
            )

        await run_load(call, concurrency=1, seconds=1)


def bench(kind: str, files: int) -> dict[str, object]:
    with (
        seeded_database(kind, catalog(), {CLIENT: "website"}) as (url, keys),
        tempfile.TemporaryDirectory() as folder,
    ):
        key = keys[CLIENT]
        with server(url) as target:
            asyncio.run(warm_up(target, key))
            baseline = asyncio.run(sequential_submits(target, key, files))

        inbox = Path(folder) / "drop" / CLIENT / "inbox"
        inbox.mkdir(parents=True)
        for n in range(files):
            (inbox / f"order-{n:05d}.xml").write_bytes(order(2 * 10**6 + n))
        db = open_database(url)
        try:
            poller = FilePoller(db, DropSettings(root=inbox.parent.parent, settle_seconds=0))
            started = time.perf_counter()
            summary = poller.run_due()
            seconds = time.perf_counter() - started
        finally:
            db.dispose()
    assert summary.processed == files, f"{files - summary.processed} files were not processed"
    return {
        "database": kind,
        "files_per_s": round(files / seconds),
        "submits_per_s": round(baseline.rate),
        "ratio": round(files / seconds / baseline.rate, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--files", type=int, default=1000)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"a backlog of {args.files} files, one 10-line order each, one poller pass")
    print("| database | files/s | sequential SubmitOrder calls/s | ratio |")
    print("|---|---:|---:|---:|")
    for kind in kinds:
        r = bench(kind, args.files)
        print(
            f"| {r['database']} | {r['files_per_s']} | {r['submits_per_s']} | {r['ratio']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
