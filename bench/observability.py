"""What the access log and traces cost a SubmitOrder, and that traces off cost nothing.

    python -m bench.observability [--db sqlite|postgres] [--seconds 5] [--rounds 2]

1. In this process, the outcome layer every RPC passes through (api/outcomes.py: metrics, the
   call's record, the access-log line, the span's status) around a call that does nothing,
   timed with the thread's CPU clock: access log off and traces off; the access log on (to a
   file); traces on (an OpenTelemetry span per call, kept in memory).
2. Real servers (`ordergate serve`, one worker per CPU) on one seeded database, one per
   configuration, in alternating rounds: Health/Check, then SubmitOrder at its peak
   (bench.submit_orders' callers and orders), the server's CPU per order read from /proc.
   Configurations: logs and traces off; the access log on (text, to a file); traces on, sent
   over OTLP/gRPC to a collector stand-in in this process that accepts and counts them.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import tempfile
import time
import uuid
from collections.abc import Iterator
from concurrent import futures
from contextlib import contextmanager
from typing import Any

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc

from ordergate.v1 import order_service_pb2, order_service_pb2_grpc

from . import submit_orders
from .harness import (
    CONNECTIONS,
    connections,
    cpu_per_call,
    cpu_seconds,
    run_load,
    seeded_database,
    server,
)

CONFIGURATIONS: dict[str, dict[str, str]] = {
    "logs and traces off": {"ORDERGATE_ACCESS_LOG": "false"},
    "access log on": {"ORDERGATE_ACCESS_LOG": "true", "ORDERGATE_LOG_LEVEL": "INFO"},
    "traces on (OTLP)": {"ORDERGATE_ACCESS_LOG": "false", "OTEL_TRACES_EXPORTER": "otlp"},
}


# --- 1. in this process -------------------------------------------------------------------


def outcome_layer_us(iterations: int) -> dict[str, float]:
    """CPU per call of the outermost interceptor's work, around a behaviour that does nothing."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from ordergate_server import observability
    from ordergate_server.api.metrics import Metrics
    from ordergate_server.api.outcomes import OutcomeInterceptor
    from ordergate_server.service import monitoring

    class Context:
        def code(self) -> None:
            return None

        def peer(self) -> str:
            return "ipv4:127.0.0.1:50000"

    async def nothing(request: Any, context: Any) -> order_service_pb2.SubmitOrderResponse:
        return order_service_pb2.SubmitOrderResponse()

    handler = grpc.unary_unary_rpc_method_handler(nothing)
    metrics = Metrics(None, monitoring.rules(4, 72))  # type: ignore[arg-type]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("bench")

    def per_call(traced: bool, access_log: bool) -> float:
        interceptor = OutcomeInterceptor(metrics)
        interceptor.outcomes.traced = traced
        guarded: Any = interceptor.guard(handler, "/ordergate.v1.OrderService/SubmitOrder")
        behaviour = guarded.unary_unary
        observability.ACCESS.disabled = not access_log
        context = Context()

        async def calls(n: int) -> float:
            started = time.thread_time()
            for _ in range(n):
                if traced:
                    with trace.use_span(tracer.start_span("call"), end_on_exit=True):
                        await behaviour(None, context)
                else:
                    await behaviour(None, context)
                exporter.clear()
            return time.thread_time() - started

        asyncio.run(calls(iterations // 10))  # warm-up
        return asyncio.run(calls(iterations)) * 1e6 / iterations

    with tempfile.NamedTemporaryFile("w", suffix=".log") as log:
        handler_to_file = logging.FileHandler(log.name)
        observability.ACCESS.addHandler(handler_to_file)
        observability.ACCESS.setLevel(logging.INFO)
        observability.ACCESS.propagate = False
        try:
            return {
                "logs and traces off": per_call(traced=False, access_log=False),
                "access log on": per_call(traced=False, access_log=True),
                "traces on": per_call(traced=True, access_log=False),
            }
        finally:
            observability.ACCESS.removeHandler(handler_to_file)


# --- 2. real servers ----------------------------------------------------------------------


class CollectorStandIn(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace collector that accepts every export and counts the spans."""

    def __init__(self) -> None:
        self.spans = 0

    def Export(self, request: Any, context: Any) -> Any:
        self.spans += sum(
            len(scope.spans)
            for resource in request.resource_spans
            for scope in resource.scope_spans
        )
        return trace_service_pb2.ExportTraceServiceResponse()


@contextmanager
def collector() -> Iterator[tuple[str, CollectorStandIn]]:
    stand_in = CollectorStandIn()
    sink = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(stand_in, sink)  # type: ignore[no-untyped-call]
    port = sink.add_insecure_port("127.0.0.1:0")
    sink.start()
    try:
        yield f"http://127.0.0.1:{port}", stand_in
    finally:
        sink.stop(0)


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """`variables` in this process's environment, which the bench server inherits."""
    before = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


async def peak(target: str, pid: int, url: str, key: str, seconds: float) -> dict[str, float]:
    metadata = (("authorization", f"Bearer {key}"),)
    async with connections(target) as channels:
        health = [health_pb2_grpc.HealthStub(c) for c in channels]
        orders = [order_service_pb2_grpc.OrderServiceStub(c) for c in channels]

        async def health_call(n: int, lane: int) -> object:
            return await health[lane].Check(health_pb2.HealthCheckRequest())

        async def submit_call(n: int, lane: int) -> object:
            return await orders[lane].SubmitOrder(
                order_service_pb2.SubmitOrderRequest(
                    request_id=str(uuid.uuid4()), order_xml=submit_orders.order(n)
                ),
                metadata=metadata,
            )

        await run_load(submit_call, concurrency=32, seconds=1, lanes=CONNECTIONS)  # warm-up
        baseline = await run_load(health_call, concurrency=32, seconds=seconds, lanes=CONNECTIONS)
        before = cpu_seconds(pid, url)
        submits = await run_load(submit_call, concurrency=32, seconds=seconds, lanes=CONNECTIONS)
        used = cpu_per_call(before, cpu_seconds(pid, url), submits.calls)
    return {
        "health": baseline.rate,
        "orders": submits.rate,
        "ratio": submits.rate / baseline.rate,
        "server_us": used["server"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--db", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seconds", type=float, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--iterations", type=int, default=50_000)
    args = parser.parse_args()

    layer = outcome_layer_us(args.iterations)
    print("The outcome layer around a call that does nothing, microseconds of CPU per call:")
    for name, cost in layer.items():
        print(f"  {name}: {cost:.2f}")
    print()
    print(
        f"SubmitOrder at its peak, {args.db}, {args.rounds} alternating round(s), "
        f"{args.seconds:g} s per phase, one worker per CPU"
    )
    print(
        "| configuration | round | Health/Check calls/s | orders/s | ratio "
        "| server CPU per order, us | spans received |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    catalog = submit_orders.catalog()
    with (
        seeded_database(args.db, catalog, {"bench-shop": "website"}) as (url, keys),
        collector() as (endpoint, stand_in),
    ):
        for round_ in range(1, args.rounds + 1):
            for name, variables in CONFIGURATIONS.items():
                traced = "OTEL_TRACES_EXPORTER" in variables
                settings = {
                    k.removeprefix("ORDERGATE_").lower(): v
                    for k, v in variables.items()
                    if k.startswith("ORDERGATE_")
                }
                otel = {k: v for k, v in variables.items() if k.startswith("OTEL_")}
                if traced:
                    otel |= {
                        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoint,
                        "OTEL_EXPORTER_OTLP_INSECURE": "true",
                    }
                spans_before = stand_in.spans
                with (
                    environment(otel),
                    server(url, workers=str(os.cpu_count() or 1), **settings) as target,
                ):
                    got = asyncio.run(
                        peak(target, target.pid, url, keys["bench-shop"], args.seconds)
                    )
                time.sleep(0.5)  # the last batch of spans, exported as the server stopped
                print(
                    f"| {name} | {round_} | {got['health']:.0f} | {got['orders']:.0f} "
                    f"| {got['ratio']:.3f} | {got['server_us']:.0f} "
                    f"| {stand_in.spans - spans_before if traced else '-'} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
