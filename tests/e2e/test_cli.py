"""The commands a user runs: `ordergate serve --demo`, `load`, `keys create`, SIGTERM drain.

Each test runs the installed `ordergate` entry point in a temporary folder, as a user would.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import order_pb2, order_service_pb2_grpc
from ordergate.v1 import order_service_pb2 as pb

from ..support import EXAMPLES, auth

ORDERGATE = str(Path(sys.executable).parent / "ordergate")


class ServerProcess:
    """`ordergate serve` as a child process; waits until it has printed its port (and demo key)."""

    def __init__(
        self,
        cwd: Path,
        *args: str,
        database_url: str | None = None,
        env_overrides: dict[str, str] | None = None,
    ) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("ORDERGATE_DATABASE_URL", None)
        if database_url:
            env["ORDERGATE_DATABASE_URL"] = database_url
        env.update(env_overrides or {})
        self.process = subprocess.Popen(
            [ORDERGATE, "serve", "--listen", "127.0.0.1:0", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.output: list[str] = []
        wants_http = bool(env.get("ORDERGATE_HTTP_LISTEN"))  # its address is printed next
        self.port = 0
        self.http_port = 0  # with an HTTP listener (the demo has one)
        self.keys: list[str] = []  # the demo's: the website key, then the staff (manager) key
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)
            if match := re.search(r"serving on 127\.0\.0\.1:(\d+)", line):
                self.port = int(match.group(1))
            if match := re.search(r"HTTP .* on http://127\.0\.0\.1:(\d+)", line):
                self.http_port = int(match.group(1))
            if match := re.search(r"^\s+(og_\S+)$", line):
                self.keys.append(match.group(1))
            announced = self.port and (self.http_port or not wants_http)
            if line.startswith("Try:") or (announced and "--demo" not in args):
                break
        assert self.port, "".join(self.output)
        # Read on while it runs: its log (an access-log line per call) would otherwise fill the
        # pipe, and a server blocked writing a log line answers nothing.
        self._reader = threading.Thread(target=self._read_on, daemon=True)
        self._reader.start()

    def _read_on(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.output.append(line)

    @property
    def key(self) -> str:
        return self.keys[0] if self.keys else ""

    def finish(self) -> str:
        """SIGTERM, then everything it printed once it has exited."""
        self.process.send_signal(signal.SIGTERM)
        return self.exited()

    def exited(self) -> str:
        """Everything it printed, once it has exited."""
        self.process.wait(timeout=30)
        self._reader.join(timeout=10)
        return "".join(self.output)


@pytest.fixture
def demo(tmp_path: Path) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path, "--demo")
    yield server
    if server.process.poll() is None:
        server.finish()


def _expected_outcome(path: Path) -> tuple[int, set[tuple[str, str]]]:
    """Read the 'Expected:' comment of an example: the state and the (code, field) pairs."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r"Expected: ON_HOLD with (.*?)-->", text, re.S)
    if match is None:
        return order_pb2.ORDER_STATE_ACCEPTED, set()
    pairs = set()
    for part in re.split(r",\s*", " ".join(match.group(1).split())):
        code, _, fields = part.partition(" at ")
        for field in fields.split(" and ") if fields else [""]:
            pairs.add((code.strip(), field.strip()))
    return order_pb2.ORDER_STATE_ON_HOLD, pairs


def test_demo_server_answers_every_example_as_documented(demo: ServerProcess) -> None:
    assert demo.key.startswith("og_")
    examples = sorted(EXAMPLES.glob("*.xml")) + sorted((EXAMPLES / "invalid").glob("*.xml"))
    assert len(examples) >= 10
    with grpc.insecure_channel(f"127.0.0.1:{demo.port}") as channel:
        orders = order_service_pb2_grpc.OrderServiceStub(channel)
        for path in examples:
            reply = orders.SubmitOrder(
                pb.SubmitOrderRequest(request_id=str(uuid.uuid4()), order_xml=path.read_bytes()),
                metadata=auth(demo.key),
                timeout=10,
            )
            state, reasons = _expected_outcome(path)
            assert reply.order.state == state, (path.name, reply.order.hold_reasons)
            got = {(r.code, r.field) for r in reply.order.hold_reasons}
            if any(field for _, field in reasons):
                assert got == reasons, path.name
            else:  # a problem submission: the code is documented, the field is the parser's
                assert {code for code, _ in got} == {code for code, _ in reasons}, path.name


def test_sigterm_reports_not_serving_then_exits_cleanly(demo: ServerProcess) -> None:
    with grpc.insecure_channel(f"127.0.0.1:{demo.port}") as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert next(watch).status == health_pb2.HealthCheckResponse.SERVING
        demo.process.send_signal(signal.SIGTERM)
        assert next(watch).status == health_pb2.HealthCheckResponse.NOT_SERVING
    output = demo.exited()
    assert demo.process.returncode == 0
    assert "shutting down" in output


def test_demo_starts_fresh_each_time(tmp_path: Path) -> None:
    first = ServerProcess(tmp_path, "--demo")
    with grpc.insecure_channel(f"127.0.0.1:{first.port}") as channel:
        order_service_pb2_grpc.OrderServiceStub(channel).SubmitOrder(
            pb.SubmitOrderRequest(
                request_id=str(uuid.uuid4()),
                order_xml=(EXAMPLES / "minimal-order.xml").read_bytes(),
            ),
            metadata=auth(first.key),
        )
    first.finish()
    second = ServerProcess(tmp_path, "--demo")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{second.port}") as channel:
            listed = order_service_pb2_grpc.OrderServiceStub(channel).ListOrders(
                pb.ListOrdersRequest(), metadata=auth(second.key)
            )
        assert list(listed.orders) == []
        # The first run's key belonged to the old database.
        assert first.key != second.key
    finally:
        second.finish()


def _run(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ORDERGATE_DATABASE_URL": f"sqlite:///{cwd / 'og.sqlite3'}"}
    return subprocess.run(
        [ORDERGATE, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


def test_load_keys_and_serve_on_a_users_own_catalog(tmp_path: Path) -> None:
    (tmp_path / "catalog.json").write_text(
        json.dumps(
            {
                "locations": [{"code": "DC1", "name": "Distribution centre"}],
                "products": [{"sku": "P-1", "name": "Pallet wrap", "barcodes": ["12345678"]}],
                "customers": [{"account": "K-1", "name": "Kunde", "currency": "EUR"}],
            }
        )
    )
    (tmp_path / "stock.csv").write_text("sku,location,on_hand\nP-1,DC1,3\n")
    loaded = _run(tmp_path, "load", "catalog.json")
    assert loaded.returncode == 0, loaded.stderr
    assert "1 locations, 1 products, 1 customers loaded" in loaded.stdout
    assert _run(tmp_path, "load", "stock.csv").returncode == 0

    created = _run(tmp_path, "keys", "create", "--client", "my-shop", "--role", "website")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("og_")
    refused = _run(tmp_path, "keys", "create", "--client", "my-shop", "--role", "admin")
    assert refused.returncode == 2
    assert "exists with role 'website'" in refused.stderr

    server = ServerProcess(tmp_path, database_url=f"sqlite:///{tmp_path / 'og.sqlite3'}")
    try:
        xml = (EXAMPLES / "minimal-order.xml").read_text(encoding="utf-8")
        xml = xml.replace("SKU-1001", "P-1").replace("C-1001", "K-1").replace("<Sku>", "<Barcode>")
        xml = xml.replace("</Sku>", "</Barcode>").replace("P-1", "12345678")
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            reply = order_service_pb2_grpc.OrderServiceStub(channel).SubmitOrder(
                pb.SubmitOrderRequest(request_id=str(uuid.uuid4()), order_xml=xml.encode()),
                metadata=auth(key),
            )
        assert reply.order.state == order_pb2.ORDER_STATE_ACCEPTED, reply.order.hold_reasons
        assert reply.order.lines[0].sku == "P-1"
        assert reply.order.allocation_location == "DC1"
    finally:
        server.finish()


def test_load_refuses_a_bad_file_naming_the_row_and_field(tmp_path: Path) -> None:
    (tmp_path / "customers.csv").write_text("account,name,currency\nK-1,Good,EUR\nK-2,Bad,euro\n")
    result = _run(tmp_path, "load", "customers.csv")
    assert result.returncode == 2
    assert "customers row 2: currency" in result.stderr
