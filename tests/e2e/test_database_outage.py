"""While the database is down, the server says so: health NOT_SERVING (balancers send the calls
elsewhere), /metrics still answers (database_up 0, the last values kept), and every refused call
is counted under the code its client received, UNAVAILABLE. When the database is back, so is
the server. A PostgreSQL of the test's own is stopped and started for it."""

from __future__ import annotations

import os
import re
import subprocess
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families

from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.demo import DEMO_CATALOG

from ..support import Api, order_xml, rich_error
from .private_postgres import private_postgres
from .test_cli import ORDERGATE, ServerProcess

ORDER_SERVICE = "ordergate.v1.OrderService"


def _health(port: int, service: str) -> str:
    """The status a new connection is told (new connections spread over the workers)."""
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5
        )
    return str(health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status))


def _everywhere(port: int, status: str) -> bool:
    """`status` on ten new connections, for the order service and the server as a whole."""
    return all(_health(port, s) == status for _ in range(10) for s in (ORDER_SERVICE, ""))


def _until(holds: Callable[[], bool], what: str, seconds: float) -> float:
    started = time.monotonic()
    while not holds():
        assert time.monotonic() - started < seconds, f"not {what} after {seconds}s"
        time.sleep(0.1)
    return time.monotonic() - started


def _scrape(port: int) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_health_and_metrics_tell_the_truth_through_a_database_outage(tmp_path: Path) -> None:
    with private_postgres() as database:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("ORDERGATE_")},
            "ORDERGATE_DATABASE_URL": database.url,
        }
        key = subprocess.run(
            [ORDERGATE, "keys", "create", "--client", "demo-shop", "--role", "website"],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        subprocess.run(
            [ORDERGATE, "load", str(DEMO_CATALOG)],
            env=env,
            cwd=tmp_path,
            check=True,
            capture_output=True,
        )
        server = ServerProcess(
            tmp_path,
            "--workers",
            "2",
            database_url=database.url,
            env_overrides={
                "ORDERGATE_METRICS_LISTEN": "127.0.0.1:0",
                "ORDERGATE_HEALTH_CHECK_SECONDS": "0.5",
            },
        )
        try:
            metrics_line = next(line for line in server.output if "Metrics for all" in line)
            metrics_port = int(re.findall(r":(\d+)/metrics", metrics_line)[0])
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                api = Api(channel, key)

                def submit(number: str) -> pb.SubmitOrderResponse:
                    return api.submit(order_xml(number, [("NOPE", 1)]))

                assert submit("OUT-1").order.hold_reasons[0].code == "SKU_UNKNOWN"
                assert _everywhere(server.port, "SERVING")
                before = _scrape(metrics_port)
                assert before[("ordergate_database_up", ())] == 1
                held = ("ordergate_exception_queue_depth", (("reason", "SKU_UNKNOWN"),))
                assert before[held] == 1

                database.stop()
                took = _until(lambda: _everywhere(server.port, "NOT_SERVING"), "NOT_SERVING", 10)
                assert took < 5

                with pytest.raises(grpc.RpcError) as refused:
                    submit("OUT-2")
                assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
                assert rich_error(refused.value).reason == "DATABASE_UNAVAILABLE"
                during = _scrape(metrics_port)  # answers: no HTTP 500
                assert during[("ordergate_database_up", ())] == 0
                assert during[("ordergate_collector_failures_total", ())] >= 1
                assert during[held] == 1  # the last value, kept
                unavailable = (
                    "ordergate_rpc_requests_total",
                    (("code", "UNAVAILABLE"), ("method", "SubmitOrder")),
                )
                # The worker counts a call once its answer is on its way: on a busy machine the
                # scrape can come first by a few milliseconds.
                _until(lambda: _scrape(metrics_port).get(unavailable) == 1, "counted", 5)
                during = _scrape(metrics_port)
                assert not any(
                    name == "ordergate_rpc_requests_total" and ("code", "INTERNAL") in labels
                    for name, labels in during
                )

                database.start()
                _until(lambda: _everywhere(server.port, "SERVING"), "SERVING again", 15)
                assert submit("OUT-3").order.client_order_id == "OUT-3"
                assert _scrape(metrics_port)[("ordergate_database_up", ())] == 1
        finally:
            output = server.finish()
        assert server.process.returncode == 0, output
        assert "the database does not answer" in output
        assert "health NOT_SERVING" in output
        assert "health SERVING" in output
