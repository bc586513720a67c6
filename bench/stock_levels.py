"""GetStockLevels calls per second (100 SKUs per call), next to the health-check rate.

    python -m bench.stock_levels [--db sqlite|postgres|both] [--seconds 10] [--concurrency 32]

Same setup as bench.submit_orders (100 SKUs, one server process, a grpc.aio client in this
process); each call asks for all 100 SKUs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import inventory_service_pb2, inventory_service_pb2_grpc

from .harness import LoadResult, database, ordergate, run_load, server
from .submit_orders import SKUS, catalog


async def measure(
    target: str, key: str, seconds: float, concurrency: int
) -> tuple[LoadResult, LoadResult]:
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        inventory = inventory_service_pb2_grpc.InventoryServiceStub(channel)
        check = health_pb2.HealthCheckRequest()
        request = inventory_service_pb2.GetStockLevelsRequest(codes=SKUS)

        async def health_call(_: int) -> object:
            return await health.Check(check)

        async def stock_call(_: int) -> object:
            reply = await inventory.GetStockLevels(request, metadata=metadata)
            assert len(reply.items) == len(SKUS)
            return reply

        await run_load(health_call, concurrency=concurrency, seconds=1)  # warm up
        baseline = await run_load(health_call, concurrency=concurrency, seconds=seconds)
        lookups = await run_load(stock_call, concurrency=concurrency, seconds=seconds)
        return baseline, lookups


def bench(kind: str, seconds: float, concurrency: int) -> tuple[LoadResult, LoadResult]:
    with database(kind) as url, tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "catalog.json"
        path.write_text(json.dumps(catalog()))
        ordergate(url, "load", str(path))
        key = ordergate(
            url, "keys", "create", "--client", "bench-shop", "--role", "website"
        ).strip()
        with server(url) as target:
            return asyncio.run(measure(target, key, seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"GetStockLevels with {len(SKUS)} SKUs per call, concurrency {args.concurrency}")
    print("| database | Health/Check calls/s | GetStockLevels calls/s | ratio | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for kind in kinds:
        baseline, lookups = bench(kind, args.seconds, args.concurrency)
        print(
            f"| {kind} | {baseline.rate:.0f} | {lookups.rate:.0f} | "
            f"{lookups.rate / baseline.rate:.3f} | {lookups.percentile(50):.1f} | "
            f"{lookups.percentile(99):.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
