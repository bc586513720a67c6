"""`ordergate serve --workers 2`: two processes on one port, on both databases. Calls spread
over both, metrics add up across them, streams work in each, SIGTERM stops them all."""

from __future__ import annotations

import os
import re
import signal
import threading
import time
import urllib.request
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc
from ordergate_server.domain.access import Role
from ordergate_server.service import api_keys
from ordergate_server.storage import Database

from ..support import Keys, auth, order_xml
from .test_cli import ServerProcess


@pytest.fixture
def workers(db: Database, keys: Keys, tmp_path: Path) -> ServerProcess:
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    return ServerProcess(
        tmp_path,
        "--workers",
        "2",
        database_url=db.engine.url.render_as_string(hide_password=False),
        env_overrides={
            "ORDERGATE_METRICS_LISTEN": "127.0.0.1:0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "ORDERGATE_KEEP_METRICS_DIR": "1",
        },
    )


def _worker_pids(tmp_path: Path) -> set[int]:
    """The workers that served calls: each writes its counters to counter_<pid>.db."""
    return {int(p.stem.split("_")[1]) for p in (tmp_path / "metrics").glob("counter_*.db")}


def test_two_workers_share_the_port_and_the_metrics(
    workers: ServerProcess, keys: Keys, tmp_path: Path
) -> None:
    try:
        target = f"127.0.0.1:{workers.port}"
        for _ in range(40):  # a new connection each time: the kernel spreads them
            with grpc.insecure_channel(target) as channel:
                order_service_pb2_grpc.OrderServiceStub(channel).ListOrders(
                    pb.ListOrdersRequest(), metadata=auth(keys.shop), timeout=10
                )
        assert len(_worker_pids(tmp_path)) == 2

        metrics_line = next(line for line in workers.output if "Metrics for all workers" in line)
        metrics_port = re.search(r"127\.0\.0\.1:(\d+)", metrics_line)
        assert metrics_port is not None
        with urllib.request.urlopen(
            f"http://127.0.0.1:{metrics_port.group(1)}/metrics", timeout=10
        ) as response:
            text = response.read().decode()
        assert 'ordergate_rpc_requests_total{code="OK",method="ListOrders"} 40.0' in text
        assert "ordergate_exception_queue_depth" in text or "ordergate_stuck_orders" in text
    finally:
        pids = _worker_pids(tmp_path)
        output = workers.finish()
    assert workers.process.returncode == 0, output
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_streams_work_in_every_worker(workers: ServerProcess, keys: Keys, tmp_path: Path) -> None:
    target = f"127.0.0.1:{workers.port}"
    # A connection of its own per channel (gRPC would otherwise share one between them).
    channels = [
        grpc.insecure_channel(target, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(8)
    ]
    try:
        received: list[list[str]] = [[] for _ in channels]
        streams: list[Any] = []
        for channel, got in zip(channels, received, strict=True):
            stream = order_service_pb2_grpc.OrderServiceStub(channel).WatchOrderEvents(
                pb.WatchOrderEventsRequest(), metadata=auth(keys.shop), timeout=30
            )
            streams.append(stream)

            def read(stream: object = stream, got: list[str] = got) -> None:
                try:
                    for item in stream:  # type: ignore[attr-defined]
                        got.append(item.client_order_id)
                        return
                except grpc.RpcError:
                    return

            threading.Thread(target=read, daemon=True).start()
        for channel in channels:  # every watch is open (a health check on each connection)
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
        time.sleep(0.5)
        with grpc.insecure_channel(target) as channel:
            order_service_pb2_grpc.OrderServiceStub(channel).SubmitOrder(
                pb.SubmitOrderRequest(
                    request_id="7d4c2a1e-0d7e-4f55-9d55-0c1f3a2b9e10",
                    order_xml=order_xml("W-1").encode(),
                ),
                metadata=auth(keys.shop),
                timeout=10,
            )
        deadline = time.monotonic() + 15
        while any(not got for got in received) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert received == [["W-1"]] * len(channels)
        for stream in streams:
            stream.cancel()
        time.sleep(0.5)  # each worker counts its ended (cancelled) watches
        assert len(_worker_pids(tmp_path)) == 2  # the watches were spread over both workers
    finally:
        for channel in channels:
            channel.close()
        workers.finish()
    assert workers.process.returncode == 0


def test_a_worker_that_dies_is_replaced(workers: ServerProcess, keys: Keys, tmp_path: Path) -> None:
    target = f"127.0.0.1:{workers.port}"

    def forty_calls(*, retry_unavailable: bool = False) -> None:
        for _ in range(40):
            with grpc.insecure_channel(target) as channel:
                try:
                    order_service_pb2_grpc.OrderServiceStub(channel).ListOrders(
                        pb.ListOrdersRequest(), metadata=auth(keys.shop), timeout=10
                    )
                except grpc.RpcError as error:
                    # A connection queued at the killed worker is reset: UNAVAILABLE, which
                    # clients retry (the SDK does).
                    if not retry_unavailable or error.code() != grpc.StatusCode.UNAVAILABLE:
                        raise

    try:
        forty_calls()
        first = _worker_pids(tmp_path)
        assert len(first) == 2
        victim = min(first)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while len(_worker_pids(tmp_path) - first) == 0:
            assert time.monotonic() < deadline, "no worker took the dead one's place"
            # Served by the survivor meanwhile; the newcomer shows once it has counted a call.
            forty_calls(retry_unavailable=True)
        forty_calls()  # and now every call is answered
        replacement = _worker_pids(tmp_path) - first
        assert len(replacement) == 1
        assert next(iter(replacement)) != victim
    finally:
        workers.finish()
    assert workers.process.returncode == 0


def test_a_revoked_key_stops_within_a_second_in_every_worker(
    workers: ServerProcess, db: Database, keys: Keys, tmp_path: Path
) -> None:
    target = f"127.0.0.1:{workers.port}"
    key_id, key = api_keys.create_key(db, "shop-c", Role.WEBSITE, actor="alice")

    def codes() -> set[grpc.StatusCode]:
        """The answers to 40 calls, each on a new connection (the kernel spreads them)."""
        seen = set()
        for _ in range(40):
            with grpc.insecure_channel(target) as channel:
                try:
                    order_service_pb2_grpc.OrderServiceStub(channel).ListOrders(
                        pb.ListOrdersRequest(), metadata=auth(key), timeout=10
                    )
                    seen.add(grpc.StatusCode.OK)
                except grpc.RpcError as error:
                    seen.add(error.code())
        return seen

    try:
        assert codes() == {grpc.StatusCode.OK}  # the key is now cached in both workers
        assert len(_worker_pids(tmp_path)) == 2
        api_keys.revoke_key(db, key_id, actor="bob", reason="leaked")
        time.sleep(1.1)
        assert codes() == {grpc.StatusCode.UNAUTHENTICATED}
    finally:
        workers.finish()
    assert workers.process.returncode == 0


def test_the_workers_share_the_http_port(db: Database, keys: Keys, tmp_path: Path) -> None:
    """Both workers of `serve --workers 2` answer HTTP on the one port (each new connection may
    land on either), with the same keys and the same outcome as over gRPC."""
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    server = ServerProcess(
        tmp_path,
        "--workers",
        "2",
        database_url=db.engine.url.render_as_string(hide_password=False),
        env_overrides={
            "ORDERGATE_HTTP_LISTEN": "127.0.0.1:0",
            "ORDERGATE_METRICS_LISTEN": "127.0.0.1:0",
            "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir),
            "ORDERGATE_KEEP_METRICS_DIR": "1",
        },
    )
    try:
        assert server.http_port
        for n in range(40):  # a new connection each time: the kernel spreads them
            request = urllib.request.Request(
                f"http://127.0.0.1:{server.http_port}/v1/orders",
                data=order_xml(f"HTTP-W-{n}").encode(),
                headers={"authorization": f"Bearer {keys.shop}", "content-type": "application/xml"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=10) as answer:
                assert answer.status == 201
        assert len(_worker_pids(tmp_path)) == 2
    finally:
        output = server.finish()
    assert server.process.returncode == 0, output
