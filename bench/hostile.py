"""What the checks against hostile callers cost a SubmitOrder, as a share of its server CPU.

    python -m bench.hostile [--db sqlite|postgres|both] [--seconds 5] [--iterations 20000]

The checks a valid order passes through on its way in (docs/security.md):
- the request's field limits (api/request_checks.check_request on the SubmitOrderRequest);
- what storage holds (domain/limits.unstorable_reasons on the read order);
- the cap on hold reasons (domain/limits.capped, on the rules' verdict).
(Bounded errors and byte-bounded pages cost nothing on this path: they run only on a refusal
or a list. The key cache of a second instead of ten costs one key read per key, worker and
second.)

1. In this process, each check on a 10-line order (bench.submit_orders' orders), timed with
   the thread's CPU clock over --iterations calls: microseconds per order.
2. A real server (`ordergate serve`, one worker per CPU) on a fresh database: Health/Check and
   SubmitOrder at their peak (bench.submit_orders' phases), with the server's CPU per accepted
   order read from /proc.
The share is (1) / (2). At the peak the server's CPU is what limits SubmitOrder throughput, so
the share is what the checks take from it.
"""

from __future__ import annotations

import argparse
import os
import time
import uuid
from collections.abc import Callable

from ordergate.v1 import order_service_pb2
from ordergate_server.api.request_checks import check_request
from ordergate_server.domain.limits import capped, unstorable_reasons
from ordergate_server.domain.model import OrderDraft
from ordergate_server.formats import read_order

from . import submit_orders
from .harness import CONNECTIONS


def _cpu_us(work: Callable[[], object], iterations: int) -> float:
    for _ in range(iterations // 10):  # warm-up
        work()
    started = time.thread_time()
    for _ in range(iterations):
        work()
    return (time.thread_time() - started) * 1e6 / iterations


def checks_cpu_us(iterations: int) -> dict[str, float]:
    payload = submit_orders.order(1)
    request = order_service_pb2.SubmitOrderRequest(request_id=str(uuid.uuid4()), order_xml=payload)
    draft = read_order(payload)
    assert isinstance(draft, OrderDraft)
    return {
        "field limits": _cpu_us(lambda: check_request(request), iterations),
        "storable": _cpu_us(lambda: unstorable_reasons(draft), iterations),
        "reasons capped": _cpu_us(lambda: capped([]), iterations),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres", "both"], default="both")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--iterations", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=32)
    args = parser.parse_args()
    checks = checks_cpu_us(args.iterations)
    total = sum(checks.values())
    print("The checks on one 10-line order, microseconds of CPU (this process):")
    for name, cost in checks.items():
        print(f"  {name}: {cost:.2f}")
    print(f"  all: {total:.2f}")
    print()
    print(
        "| database | orders/s | ratio to Health/Check | server CPU per order, us "
        "| checks, us | share of the order's server CPU |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    kinds = ["sqlite", "postgres"] if args.db == "both" else [args.db]
    for kind in kinds:
        result = submit_orders.bench(
            kind,
            args.seconds,
            args.concurrency,
            os.cpu_count() or 1,
            (CONNECTIONS, max(1, args.concurrency // CONNECTIONS)),
        )
        usage = result["usage"]
        assert isinstance(usage, dict)
        server_us = usage["SubmitOrder"].cpu_us["server"]
        print(
            f"| {kind} | {result['orders_per_s']} | {result['ratio']} | {server_us:.0f} "
            f"| {total:.1f} | {total / server_us:.2%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
