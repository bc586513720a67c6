"""Where one order's server CPU goes, stage by stage: parse, validate, map, rules, storage.

    python -m bench.stages [--db sqlite|postgres|both] [--orders 2000] [--batch 16]

For each database: a fresh database with the bench catalog, then N accepted 10-line orders
through the same functions SubmitOrder calls, in this process, one after another, timing each
stage with the thread's CPU clock (time.thread_time):

- parse:    hardened XML parse (formats/safe_xml.parse_untrusted)
- validate: XSD validation (lxml)
- map:      XML -> OrderDraft
- rules:    the mandatory-field rules on the draft (pure)
- storage:  the rest of submit_order: catalog lookups, allocation, the transaction and commit
            (client-side CPU: SQLAlchemy and the driver; on SQLite the database engine too)

and then, apart, "storage in a batch": the same orders stored --batch at a time with
`store_submissions`, as SubmitOrder's group commit does under load, per order.

The sum is the order's CPU in the server process outside gRPC. It is printed per stage in
microseconds and as a share, so the remaining cost is visible; gRPC's own cost per call is the
Health/Check baseline of bench.submit_orders.
"""

from __future__ import annotations

import argparse
import time
import uuid

from ordergate_server.domain.access import Principal, Role
from ordergate_server.domain.rules import CatalogFacts, check_order
from ordergate_server.formats import DocumentLimits, native
from ordergate_server.formats.safe_xml import parse_untrusted
from ordergate_server.formats.schemas import compiled
from ordergate_server.service.submit import prepare_submission, submit_order
from ordergate_server.service.submit_batch import store_submissions
from ordergate_server.storage import catalog as catalog_rows
from ordergate_server.storage import open_database

from .harness import seeded_database
from .submit_orders import catalog, order

STAGES = ("parse", "validate", "map", "rules", "storage")
BATCH = 16


def measure(url: str, orders: int, batch_size: int = BATCH) -> dict[str, float]:
    db = open_database(url)
    with db.reader() as conn:
        client_id = conn.exec_driver_sql(
            "SELECT id FROM clients WHERE name = 'bench-shop'"
        ).scalar_one()
    principal = Principal(int(client_id), "bench-shop", Role.WEBSITE)
    limits = DocumentLimits()
    schema = compiled(native.SCHEMA)
    spent = dict.fromkeys(STAGES, 0.0)
    try:
        for n in range(orders + 50):
            payload = order(n)
            t0 = time.thread_time()
            root = parse_untrusted(payload, limits)
            t1 = time.thread_time()
            assert schema.validate(root)
            t2 = time.thread_time()
            draft = native.to_draft(root)
            t3 = time.thread_time()
            with db.reader() as conn:
                products = catalog_rows.resolve_products(
                    conn, (ln.catalog_key for ln in draft.lines)
                )
                account = draft.customer_account
                customer = catalog_rows.get_customers(conn, [account]).get(account)
            t4 = time.thread_time()
            assert not check_order(draft, CatalogFacts(products, customer, principal.client_id))
            t5 = time.thread_time()
            result = submit_order(db, principal, request_id=str(uuid.uuid4()), payload=payload)
            t6 = time.thread_time()
            assert result.order.state.value == "ACCEPTED"
            if n < 50:
                continue  # warm-up: compiled schema, statement caches, connections
            spent["parse"] += t1 - t0
            spent["validate"] += t2 - t1
            spent["map"] += t3 - t2
            spent["rules"] += t5 - t4
            # submit_order repeats parse, validate, map and rules; the rest is storage.
            spent["storage"] += (t6 - t5) - ((t3 - t0) + (t5 - t4))
        batched = 0.0
        for first in range(0, orders, batch_size):
            batch = [
                prepare_submission(principal, request_id=str(uuid.uuid4()), payload=order(n))
                for n in range(first, min(first + batch_size, orders))
            ]
            t0 = time.thread_time()
            outcomes = store_submissions(db, batch)
            batched += time.thread_time() - t0
            assert all(not isinstance(o, Exception) for o in outcomes)
    finally:
        db.dispose()
    per_order = {stage: seconds / orders * 1e6 for stage, seconds in spent.items()}
    return per_order | {"storage in a batch": batched / orders * 1e6}


def bench(kind: str, orders: int, batch_size: int = BATCH) -> dict[str, float]:
    with seeded_database(kind, catalog(), {"bench-shop": "website"}) as (url, _):
        return measure(url, orders, batch_size)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=BATCH, help="orders per transaction")
    args = parser.parse_args()
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    print(f"server CPU per accepted 10-line order, microseconds (share), {args.orders} orders")
    print(
        "| database | " + " | ".join(STAGES) + f" | total | storage, {args.batch} per transaction |"
    )
    print("|---|" + "---:|" * (len(STAGES) + 2))
    for kind in kinds:
        micros = bench(kind, args.orders, args.batch)
        total = sum(micros[s] for s in STAGES)
        cells = [f"{micros[s]:.0f} ({micros[s] / total:.0%})" for s in STAGES]
        batched = micros["storage in a batch"]
        print(f"| {kind} | " + " | ".join(cells) + f" | {total:.0f} | {batched:.0f} |", flush=True)


if __name__ == "__main__":
    main()
