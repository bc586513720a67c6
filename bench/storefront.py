"""Storefront lookups per second, next to the health-check rate of the same server:
GetStockLevels asking for 100 SKUs per call, and GetCustomerPrices pricing 20 lines per call.

    python -m bench.storefront [--db sqlite|postgres|both] [--seconds 10] [--concurrency 32]

Same setup as bench.submit_orders (100 SKUs, `--workers` server processes, a grpc.aio client in this
process), plus a price list with quantity breaks for every SKU and contract prices for some.
"""

from __future__ import annotations

import argparse
import asyncio
import os

from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import (
    inventory_service_pb2,
    inventory_service_pb2_grpc,
    pricing_service_pb2,
    pricing_service_pb2_grpc,
)

from .harness import (
    CONNECTIONS,
    LoadResult,
    busy_share,
    connections,
    machine_ticks,
    run_load,
    seeded_database,
    server,
)
from .submit_orders import SKUS, catalog


def priced_catalog() -> dict[str, list[dict[str, object]]]:
    data = catalog()
    data["products"] = [
        {**p, "list_price": "10.00", "list_currency": "EUR"} for p in data["products"]
    ]
    data["price_lists"] = [
        {
            "code": "BENCH",
            "name": "Bench list",
            "currency": "EUR",
            "entries": [
                {"sku": sku, "min_quantity": q, "unit_price": f"{9 - q / 100:.2f}"}
                for sku in SKUS
                for q in (1, 10, 50)
            ],
        }
    ]
    data["customers"] = [
        {**c, "client": "bench-shop", "price_list": "BENCH"} for c in data["customers"]
    ]
    data["contract_prices"] = [
        {"customer_account": "BENCH", "sku": sku, "unit_price": "7.77"} for sku in SKUS[::10]
    ]
    return data


async def measure(
    target: str, key: str, seconds: float, concurrency: int
) -> tuple[LoadResult, LoadResult, LoadResult, list[float]]:
    metadata = (("authorization", f"Bearer {key}"),)
    async with connections(target) as channels:
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        inventory = [inventory_service_pb2_grpc.InventoryServiceStub(c) for c in channels]
        check = health_pb2.HealthCheckRequest()
        request = inventory_service_pb2.GetStockLevelsRequest(codes=SKUS)
        pricing = [pricing_service_pb2_grpc.PricingServiceStub(c) for c in channels]
        price_request = pricing_service_pb2.GetCustomerPricesRequest(
            customer_account="BENCH",
            items=[
                pricing_service_pb2.PriceQuery(code=sku, quantity=1 + n * 3)
                for n, sku in enumerate(SKUS[:20])
            ],
        )

        async def health_call(n: int, lane: int) -> object:
            return await health[lane].Check(check)

        async def stock_call(n: int, lane: int) -> object:
            reply = await inventory[lane].GetStockLevels(request, metadata=metadata)
            assert len(reply.items) == len(SKUS)
            return reply

        async def price_call(n: int, lane: int) -> object:
            reply = await pricing[lane].GetCustomerPrices(price_request, metadata=metadata)
            assert all(item.priced for item in reply.items)
            return reply

        lanes = len(channels)
        await run_load(health_call, concurrency=concurrency, seconds=1, lanes=lanes)  # warm up
        results, busy = [], []  # each phase's load, and how busy it kept the machine
        for call in (health_call, stock_call, price_call):
            ticks = machine_ticks()
            results.append(
                await run_load(call, concurrency=concurrency, seconds=seconds, lanes=lanes)
            )
            busy.append(busy_share(ticks, machine_ticks()))
        baseline, stock, prices = results
        return baseline, stock, prices, busy


def bench(
    kind: str, seconds: float, concurrency: int, workers: int
) -> tuple[LoadResult, LoadResult, LoadResult, list[float]]:
    # The customer in the catalog belongs to the website client.
    with (
        seeded_database(kind, priced_catalog(), {"bench-shop": "website"}) as (url, keys),
        server(url, workers=str(workers)) as target,
    ):
        return asyncio.run(measure(target, keys["bench-shop"], seconds, concurrency))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(
        f"concurrency {args.concurrency} over {CONNECTIONS} connections, {args.seconds:g} s per "
        f"phase, {args.workers} server worker(s)"
    )
    # Machine busy: how busy the CPUs were in the RPC's phase, and in the Health/Check phase
    # (if well under 100%, the callers set the rate, not the server: bench/README.md).
    print(
        "| database | RPC | calls/s | Health/Check calls/s | ratio | p50 ms | p99 ms "
        "| machine busy (RPC / Health/Check) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        baseline, stock, prices, busy = bench(kind, args.seconds, args.concurrency, args.workers)
        for name, result, share in (
            ("GetStockLevels (100 SKUs)", stock, busy[1]),
            ("GetCustomerPrices (20 lines)", prices, busy[2]),
        ):
            print(
                f"| {kind} | {name} | {result.rate:.0f} | {baseline.rate:.0f} | "
                f"{result.rate / baseline.rate:.3f} | {result.percentile(50):.1f} | "
                f"{result.percentile(99):.1f} | {share:.0%} / {busy[0]:.0%} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
