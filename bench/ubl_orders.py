"""UBL 2.1 orders accepted per second, next to native orders of the same lines, same server.

    python -m bench.ubl_orders [--db sqlite|postgres|both] [--seconds 10] [--concurrency 32]

For each database: a fresh database with 100 SKUs in ample stock, `ordergate serve` (one
process), then from this process, same concurrency for every phase:
1. Health/Check for N seconds (the framework's ceiling here, in this run);
2. SubmitOrder with native 10-line orders for N seconds;
3. SubmitOrder with UBL 2.1 (PEPPOL BIS 3 shaped) 10-line orders, same SKUs and quantities.
Prints calls/s, p99 and the ratios UBL : native and each : health checks.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import Callable

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import order_pb2, order_service_pb2, order_service_pb2_grpc

from .harness import Call, LoadResult, analyze, run_load, seeded_database, server
from .submit_orders import SKUS, catalog, order


def ubl_order(n: int, lines: int = 10) -> bytes:
    """The same lines as `order(n)`, as a UBL 2.1 Order the PEPPOL rules accept."""
    body = "".join(
        f"<cac:OrderLine><cac:LineItem><cbc:ID>{i + 1}</cbc:ID>"
        f'<cbc:Quantity unitCode="EA">{1 + i % 3}</cbc:Quantity>'
        f'<cbc:LineExtensionAmount currencyID="EUR">{4.20 * (1 + i % 3):.2f}'
        "</cbc:LineExtensionAmount>"
        '<cac:Price><cbc:PriceAmount currencyID="EUR">4.20</cbc:PriceAmount></cac:Price>'
        "<cac:Item><cbc:Name>Bench product</cbc:Name><cac:SellersItemIdentification>"
        f"<cbc:ID>{SKUS[(n + i * 7) % len(SKUS)]}</cbc:ID></cac:SellersItemIdentification>"
        "</cac:Item></cac:LineItem></cac:OrderLine>"
        for i in range(lines)
    )
    total = sum(4.20 * (1 + i % 3) for i in range(lines))
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<Order xmlns="urn:oasis:names:specification:ubl:schema:xsd:Order-2" '
        'xmlns:cac="urn:oasis:names:specification:ubl:schema:xsd:CommonAggregateComponents-2" '
        'xmlns:cbc="urn:oasis:names:specification:ubl:schema:xsd:CommonBasicComponents-2">'
        "<cbc:CustomizationID>urn:fdc:peppol.eu:poacc:trns:order:3</cbc:CustomizationID>"
        "<cbc:ProfileID>urn:fdc:peppol.eu:poacc:bis:order_only:3</cbc:ProfileID>"
        f"<cbc:ID>BENCH-{n}-{uuid.uuid4().hex[:8]}</cbc:ID><cbc:IssueDate>2026-11-23</cbc:IssueDate>"
        "<cbc:DocumentCurrencyCode>EUR</cbc:DocumentCurrencyCode>"
        "<cac:BuyerCustomerParty><cbc:SupplierAssignedAccountID>BENCH"
        "</cbc:SupplierAssignedAccountID><cac:Party><cac:PartyName><cbc:Name>Bench</cbc:Name>"
        "</cac:PartyName><cac:Contact><cbc:Telephone>+49 40 1234567</cbc:Telephone>"
        "</cac:Contact></cac:Party></cac:BuyerCustomerParty>"
        "<cac:SellerSupplierParty><cac:Party><cac:PartyName><cbc:Name>Bench DC</cbc:Name>"
        "</cac:PartyName></cac:Party></cac:SellerSupplierParty>"
        "<cac:Delivery><cac:DeliveryLocation><cac:Address>"
        "<cbc:StreetName>Hafenstraße 1</cbc:StreetName><cbc:CityName>Hamburg</cbc:CityName>"
        "<cbc:PostalZone>20457</cbc:PostalZone><cac:Country><cbc:IdentificationCode>DE"
        "</cbc:IdentificationCode></cac:Country></cac:Address></cac:DeliveryLocation>"
        "</cac:Delivery>"
        f'<cac:AnticipatedMonetaryTotal><cbc:LineExtensionAmount currencyID="EUR">{total:.2f}'
        f'</cbc:LineExtensionAmount><cbc:PayableAmount currencyID="EUR">{total:.2f}'
        "</cbc:PayableAmount></cac:AnticipatedMonetaryTotal>"
        f"{body}</Order>"
    ).encode()


async def measure(
    target: str, database_url: str, key: str, seconds: float, concurrency: int
) -> tuple[LoadResult, LoadResult, LoadResult]:
    metadata = (("authorization", f"Bearer {key}"),)
    async with grpc.aio.insecure_channel(target) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        orders = order_service_pb2_grpc.OrderServiceStub(channel)
        check = health_pb2.HealthCheckRequest()

        async def health_call(n: int, lane: int) -> object:
            return await health.Check(check)

        def submitter(make: Callable[[int], bytes]) -> Call:
            async def submit(n: int, lane: int) -> object:
                reply = await orders.SubmitOrder(
                    order_service_pb2.SubmitOrderRequest(
                        request_id=str(uuid.uuid4()), order_xml=make(n)
                    ),
                    metadata=metadata,
                )
                assert reply.order.state == order_pb2.ORDER_STATE_ACCEPTED, reply.order
                return reply

            return submit

        await run_load(health_call, concurrency=concurrency, seconds=1)  # warm up
        await run_load(submitter(ubl_order), concurrency=concurrency, seconds=1)
        await run_load(submitter(order), concurrency=concurrency, seconds=1)
        analyze(database_url)  # statistics, as on a running deployment (harness.analyze)
        baseline = await run_load(health_call, concurrency=concurrency, seconds=seconds)
        native = await run_load(submitter(order), concurrency=concurrency, seconds=seconds)
        ubl = await run_load(submitter(ubl_order), concurrency=concurrency, seconds=seconds)
        return baseline, native, ubl


def bench(kind: str, seconds: float, concurrency: int) -> dict[str, object]:
    with (
        seeded_database(kind, catalog(), {"bench-shop": "website"}) as (url, keys),
        server(url) as target,
    ):
        baseline, native, ubl = asyncio.run(
            measure(target, url, keys["bench-shop"], seconds, concurrency)
        )
    return {
        "database": kind,
        "health": round(baseline.rate),
        "native": round(native.rate),
        "ubl": round(ubl.rate),
        "ubl_to_native": round(ubl.rate / native.rate, 2),
        "native_ratio": round(native.rate / baseline.rate, 3),
        "ubl_ratio": round(ubl.rate / baseline.rate, 3),
        "native_p99": round(native.percentile(99), 1),
        "ubl_p99": round(ubl.percentile(99), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"10-line orders, concurrency {args.concurrency}, {args.seconds:g} s per phase")
    print(
        "| database | Health/Check calls/s | native orders/s | UBL orders/s | UBL : native "
        "| native : health | UBL : health | native p99 ms | UBL p99 ms |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for kind in kinds:
        r = bench(kind, args.seconds, args.concurrency)
        print(
            f"| {r['database']} | {r['health']} | {r['native']} | {r['ubl']} | "
            f"{r['ubl_to_native']} | {r['native_ratio']} | {r['ubl_ratio']} | "
            f"{r['native_p99']} | {r['ubl_p99']} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
