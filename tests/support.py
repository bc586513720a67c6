"""Shared test helpers: a real gRPC server on 127.0.0.1:0, keys, orders, rich-error decoding."""

from __future__ import annotations

import asyncio
import http.server
import json
import socket
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Coroutine, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from prometheus_client.parser import text_string_to_metric_families

from ordergate.v1 import order_service_pb2 as pb
from ordergate.v1 import order_service_pb2_grpc
from ordergate_server.api.server import RunningServer, start_server
from ordergate_server.config import Settings
from ordergate_server.demo import DEMO_CATALOG
from ordergate_server.domain.access import Role
from ordergate_server.service.auth import create_api_key
from ordergate_server.service.catalog_load import load_catalog, read_catalog_file
from ordergate_server.storage import Database

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"


class ServerThread:
    """The real grpc.aio server, on its own event loop in a thread, on 127.0.0.1 port 0."""

    def __init__(self, db: Database, **settings: object) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.loop_thread_name = self._thread.name  # where inline calls run
        self._thread.start()
        config = Settings.from_env({}, listen="127.0.0.1:0", **settings)
        self.running: RunningServer = self._call(start_server(config, db))
        self.target = f"127.0.0.1:{self.running.port}"
        # With http_listen set: the HTTP listener's base URL (Connect, gRPC-Web, /v1/orders).
        self.http = f"http://127.0.0.1:{self.running.http_port}"

    def _call(self, coroutine: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout=30)

    def stop(self, grace: float = 0) -> None:
        self._call(self.running.stop(grace))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)
        self.loop.close()


@dataclass
class Keys:
    shop: str  # website "shop-a"
    other_shop: str  # website "shop-b"
    admin: str
    manager: str
    warehouse: str
    operations: str
    finance: str
    storefront: str  # a storefront key of website "shop-a"


def seed_demo(db: Database) -> Keys:
    """The demo catalog plus two website clients and an admin; the demo's customers belong to
    website shop-a here."""
    keys = Keys(
        shop=create_api_key(db, "shop-a", Role.WEBSITE),
        other_shop=create_api_key(db, "shop-b", Role.WEBSITE),
        admin=create_api_key(db, "ops-admin", Role.ADMIN),
        manager=create_api_key(db, "floor-manager", Role.MANAGER),
        warehouse=create_api_key(db, "dc-scanner", Role.WAREHOUSE),
        operations=create_api_key(db, "ops-desk", Role.OPERATIONS),
        finance=create_api_key(db, "finance-team", Role.FINANCE),
        storefront=create_api_key(db, "shop-a", Role.STOREFRONT),
    )
    data = read_catalog_file(DEMO_CATALOG)
    for customer in data["customers"]:
        customer["client"] = "shop-a"
    load_catalog(db, data)
    return keys


def auth(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@dataclass
class Api:
    """A sync client for the tests: the generated stub plus the key to use by default."""

    channel: grpc.Channel
    key: str
    orders: order_service_pb2_grpc.OrderServiceStub = field(init=False)

    def __post_init__(self) -> None:
        self.orders = order_service_pb2_grpc.OrderServiceStub(self.channel)

    def submit(
        self,
        xml: bytes | str,
        *,
        request_id: str | None = None,
        key: str | None = None,
        validate_only: bool = False,
    ) -> pb.SubmitOrderResponse:
        payload = xml.encode() if isinstance(xml, str) else xml
        return self.orders.SubmitOrder(
            pb.SubmitOrderRequest(
                request_id=request_id or str(uuid.uuid4()),
                order_xml=payload,
                validate_only=validate_only,
            ),
            metadata=auth(key or self.key),
            timeout=30,
        )


@dataclass(frozen=True)
class RichError:
    code: grpc.StatusCode
    message: str
    reason: str
    metadata: dict[str, str]
    field_violations: list[tuple[str, str]]


def rich_error(error: grpc.RpcError) -> RichError:
    """Decode google.rpc.Status details of a failed call (ErrorInfo, BadRequest)."""
    status: status_pb2.Status | None = rpc_status.from_call(error)  # type: ignore[arg-type]
    assert status is not None, f"no google.rpc.Status details on {error!r}"
    reason, metadata, violations = "", {}, []
    for detail in status.details:
        if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
            info = error_details_pb2.ErrorInfo()
            detail.Unpack(info)
            reason, metadata = info.reason, dict(info.metadata)
            assert info.domain == "ordergate"
        elif detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            bad = error_details_pb2.BadRequest()
            detail.Unpack(bad)
            violations = [(v.field, v.description) for v in bad.field_violations]
    return RichError(error.code(), status.message, reason, metadata, violations)


def order_xml(
    order_id: str = "T-1",
    lines: Iterable[tuple[str, int | str]] = (("SKU-1001", 1),),
    *,
    customer: str = "C-1001",
    currency: str = "EUR",
    special_handling: str = "",
    barcode_lines: bool = False,
) -> str:
    """A native order that passes every rule against the demo catalog (unless told otherwise)."""
    tag = "Barcode" if barcode_lines else "Sku"
    body = "".join(
        f"<Line><LineNumber>{n}</LineNumber><{tag}>{code}</{tag}><Quantity>{qty}</Quantity>"
        f"<UnitPrice>9.90</UnitPrice></Line>"
        for n, (code, qty) in enumerate(lines, start=1)
    )
    handling = f"<SpecialHandling>{special_handling}</SpecialHandling>" if special_handling else ""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<Order xmlns="urn:ordergate:order:v1">
  <OrderId>{order_id}</OrderId>
  <OrderDate>2026-11-23T10:00:00Z</OrderDate>
  <CustomerAccount>{customer}</CustomerAccount>
  <Channel>web</Channel>
  <Currency>{currency}</Currency>
  <Delivery>
    <Address><Name>Goods In</Name><Street>Lindenstraße 12</Street><City>Hamburg</City>
      <PostalCode>20095</PostalCode><Country>DE</Country></Address>
    <Contact><Phone>+49 40 1234567</Phone><Email>in@example.com</Email></Contact>
    {handling}
  </Delivery>
  <Lines>{body}</Lines>
</Order>"""


@contextmanager
def recording_http_server() -> Iterator[tuple[str, list[str]]]:
    """An HTTP server on 127.0.0.1 that records the path of every request it gets; yields its
    URL and that list. It answers with an entity declaration, so a parser that fetched it and
    used the answer would show "LEAKED"."""
    hits: list[str] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            hits.append(self.path)
            self.send_response(200)
            self.end_headers()
            self.wfile.write(b'<!ENTITY leak "LEAKED">')

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", hits
    finally:
        server.shutdown()


def scrape(server: ServerThread) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """The samples of `server`'s /metrics endpoint, by (name, sorted labels)."""
    url = f"http://127.0.0.1:{server.running.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


@contextmanager
def writes_held(db: Database) -> Iterator[None]:
    """Every write transaction of the server waits until the block ends (the write lock on
    SQLite; the stock table on PostgreSQL, which every order's allocation locks)."""
    if db.write_gate is not None:
        with db.write_gate.held():
            yield
        return
    with db.engine.begin() as conn:
        conn.exec_driver_sql("LOCK TABLE stock IN EXCLUSIVE MODE")
        yield


def wait_until(holds: Callable[[], object], what: str, seconds: float = 10) -> None:
    """Poll `holds` until it is true; fail, naming `what`, after `seconds`."""
    deadline = time.monotonic() + seconds
    while not holds():
        assert time.monotonic() < deadline, f"never {what}"
        time.sleep(0.01)


@dataclass(frozen=True)
class Received:
    headers: dict[str, str]  # lower-case names
    body: bytes

    @property
    def event(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


class WebhookReceiver:
    """A real HTTP receiver on 127.0.0.1 for webhook deliveries. `answers` says what the next
    requests get, one entry each, then 204 for the rest: a status code, or ("slow", seconds)
    to answer 204 that late. Every complete request is recorded, answered or not
    (one cut off by a sender that died mid-request is not a request)."""

    def __init__(self, answers: Iterable[int | tuple[str, float]] = ()) -> None:
        self.received: list[Received] = []
        self.answers = list(answers)
        self._lock = threading.Lock()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                body = self.rfile.read(length)
                if len(body) < length:  # the sender went away mid-request (killed): no request
                    return
                with receiver._lock:
                    receiver.received.append(
                        Received({k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    answer = receiver.answers.pop(0) if receiver.answers else 204
                if isinstance(answer, tuple):
                    time.sleep(answer[1])
                    answer = 204
                try:
                    self.send_response(answer)
                    self.send_header("content-length", "0")
                    self.end_headers()
                except OSError:  # the sender gave up waiting
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def events(self, type_: str | None = None) -> list[Received]:
        with self._lock:
            return [r for r in self.received if type_ is None or r.event["type"] == type_]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def refused_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens (connections are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/hooks"
