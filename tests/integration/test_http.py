"""Every RPC over HTTP, driven with curl itself: Connect JSON and binary, a server stream over
Connect, gRPC-Web, `POST /v1/orders`, and the same authentication, roles, limits, errors and
metrics as gRPC."""

from __future__ import annotations

import base64
import json
import shutil
import struct
import subprocess
import uuid
from collections.abc import Iterator
from typing import Any

import grpc
import pytest

from ordergate.v1 import inventory_service_pb2 as ipb
from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server.storage import Database

from ..support import EXAMPLES, Api, Keys, ServerThread, auth, order_xml, scrape

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")


@pytest.fixture
def http(db: Database, keys: Keys) -> Iterator[ServerThread]:
    server = ServerThread(
        db,
        http_listen="127.0.0.1:0",
        metrics_listen="127.0.0.1:0",
        http_cors_origins="https://shop.example",
    )
    yield server
    server.stop()


def curl(*args: str, data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """curl's answer: HTTP status, headers (lower-case names), body."""
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "-i",
            "--max-time",
            "20",
            *args,
            *(["--data-binary", "@-"] if data is not None else []),
        ],
        input=data,
        capture_output=True,
        check=True,
    )
    head, _, body = done.stdout.partition(b"\r\n\r\n")
    while head.startswith(b"HTTP/1.1 100"):  # curl's Expect: 100-continue for large bodies
        head, _, body = body.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {
        k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])
    }
    return status, headers, body


def connect_json(
    server: ServerThread, method: str, key: str, message: dict[str, object]
) -> tuple[int, Any]:
    status, _, body = curl(
        "-X",
        "POST",
        f"{server.http}/ordergate.v1.{method}",
        "-H",
        f"Authorization: Bearer {key}",
        "-H",
        "Content-Type: application/json",
        data=json.dumps(message).encode(),
    )
    return status, json.loads(body) if body else {}


def _reason(error: Any) -> str:
    [info] = [d for d in error["details"] if d["type"] == "google.rpc.ErrorInfo"]
    return str(info["debug"]["reason"])


def test_connect_json_answers_as_grpc_does(http: ServerThread, keys: Keys) -> None:
    status, stock = connect_json(
        http, "InventoryService/GetStockLevels", keys.storefront, {"codes": ["SKU-1001", "NOPE"]}
    )
    assert status == 200
    known, unknown = stock["items"]
    assert (known["sku"], known["found"], unknown.get("found", False)) == ("SKU-1001", True, False)
    assert int(known["total"]["available"]) > 0  # int64 is a JSON string in Connect JSON
    status, prices = connect_json(
        http,
        "PricingService/GetCustomerPrices",
        keys.shop,
        {"customerAccount": "C-1001", "items": [{"code": "SKU-1002", "quantity": 1}]},
    )
    assert (status, prices["items"][0]["unitPrice"]) == (200, "11.00")

    xml = order_xml("HTTP-1", [("NOPE", 1)]).encode()
    status, submitted = connect_json(
        http,
        "OrderService/SubmitOrder",
        keys.shop,
        {"requestId": str(uuid.uuid4()), "orderXml": base64.b64encode(xml).decode()},
    )
    assert status == 200
    order = submitted["order"]
    assert order["state"] == "ORDER_STATE_ON_HOLD"
    assert order["holdReasons"][0]["code"] == "SKU_UNKNOWN"
    status, held = connect_json(http, "ExceptionQueueService/ListHeldOrders", keys.manager, {})
    assert status == 200
    assert [o["clientOrderId"] for o in held["orders"]] == ["HTTP-1"]


def test_json_is_compact_and_strict(http: ServerThread, keys: Keys) -> None:
    """Answers on one line; a field the request message does not have is refused, naming it,
    not ignored (a misspelt field would otherwise be an empty one)."""
    status, _, body = curl(
        "-X",
        "POST",
        f"{http.http}/ordergate.v1.InventoryService/GetStockLevels",
        "-H",
        f"Authorization: Bearer {keys.shop}",
        "-H",
        "Content-Type: application/json",
        data=b'{"codes": ["SKU-1001"]}',
    )
    assert status == 200
    assert b"\n" not in body.strip()
    status, error = connect_json(
        http, "InventoryService/GetStockLevels", keys.shop, {"codez": ["SKU-1001"]}
    )
    assert (status, error["code"], _reason(error)) == (400, "invalid_argument", "REQUEST_MALFORMED")
    assert "codez" in error["message"]
    status, error = connect_json(http, "InventoryService/GetStockLevels", keys.shop, {"codes": 5})
    assert (status, _reason(error)) == (400, "REQUEST_MALFORMED")


def test_connect_binary(http: ServerThread, keys: Keys) -> None:
    status, headers, body = curl(
        "-X",
        "POST",
        f"{http.http}/ordergate.v1.InventoryService/GetStockLevels",
        "-H",
        f"Authorization: Bearer {keys.shop}",
        "-H",
        "Content-Type: application/proto",
        data=ipb.GetStockLevelsRequest(codes=["SKU-1001"]).SerializeToString(),
    )
    assert (status, headers["content-type"]) == (200, "application/proto")
    assert ipb.GetStockLevelsResponse.FromString(body).items[0].found


def _frames(body: bytes) -> Iterator[tuple[int, bytes]]:
    """The enveloped messages of a streaming body: (flags, payload)."""
    at = 0
    while at + 5 <= len(body):
        flags, length = struct.unpack(">BI", body[at : at + 5])
        yield flags, body[at + 5 : at + 5 + length]
        at += 5 + length


def _envelope(payload: bytes) -> bytes:
    return struct.pack(">BI", 0, len(payload)) + payload


def test_a_server_stream_over_connect(http: ServerThread, keys: Keys, api: Api) -> None:
    request = json.dumps({"codes": ["SKU-1001"]}).encode()
    # The watch never ends by itself: curl gives up after 3 s with what came (exit status 28).
    done = subprocess.run(
        [
            "curl",
            "-sS",
            "--max-time",
            "3",
            "-X",
            "POST",
            f"{http.http}/ordergate.v1.InventoryService/WatchStockLevels",
            "-H",
            f"Authorization: Bearer {keys.storefront}",
            "-H",
            "Content-Type: application/connect+json",
            "--data-binary",
            "@-",
        ],
        input=_envelope(request),
        capture_output=True,
    )
    frames = list(_frames(done.stdout))
    assert frames, done.stderr
    flags, first = frames[0]
    assert flags == 0
    snapshot = json.loads(first)["snapshot"]
    assert snapshot["items"][0]["sku"] == "SKU-1001"


def test_grpc_web(http: ServerThread, keys: Keys) -> None:
    status, _, body = curl(
        "-X",
        "POST",
        f"{http.http}/ordergate.v1.InventoryService/ListLocations",
        "-H",
        f"Authorization: Bearer {keys.shop}",
        "-H",
        "Content-Type: application/grpc-web+proto",
        "-H",
        "X-Grpc-Web: 1",
        data=_envelope(ipb.ListLocationsRequest().SerializeToString()),
    )
    assert status == 200
    frames = list(_frames(body))
    (flags, message), (trailer_flags, trailers) = frames
    assert flags == 0
    assert [loc.code for loc in ipb.ListLocationsResponse.FromString(message).locations]
    assert trailer_flags & 0x80
    assert b"grpc-status:0" in trailers.replace(b" ", b"")


def test_refusals_carry_the_same_reasons_as_grpc(http: ServerThread, keys: Keys) -> None:
    status, error = connect_json(http, "OrderService/GetOrder", "og_nope_nope", {"id": "x"})
    assert (status, error["code"], _reason(error)) == (401, "unauthenticated", "API_KEY_INVALID")
    status, error = connect_json(http, "OrderService/GetOrder", keys.storefront, {"id": "x"})
    assert (status, error["code"], _reason(error)) == (403, "permission_denied", "ROLE_NOT_ALLOWED")
    status, error = connect_json(http, "OrderService/GetOrder", keys.shop, {"id": "no-such"})
    assert (status, _reason(error)) == (404, "ORDER_NOT_FOUND")
    status, error = connect_json(
        http, "InventoryService/GetStockLevels", keys.shop, {"codes": ["x" * 500]}
    )
    assert (status, _reason(error)) == (400, "TEXT_TOO_LONG")
    [bad] = [d for d in error["details"] if d["type"] == "google.rpc.BadRequest"]
    assert bad["debug"]["fieldViolations"][0]["field"] == "codes[0]"
    status, error = connect_json(http, "OrderService/SubmitOrders", keys.shop, {})
    assert status in (400, 415, 501)  # a bidirectional stream: not over HTTP/1.1


def test_http_calls_are_counted_with_grpc_calls(http: ServerThread, keys: Keys, api: Api) -> None:
    connect_json(http, "InventoryService/ListLocations", keys.shop, {})
    connect_json(http, "OrderService/GetOrder", "og_x_y", {"id": "x"})
    with grpc.insecure_channel(http.target) as channel:
        Api(channel, keys.shop).orders.ListOrders(pb.ListOrdersRequest(), metadata=auth(keys.shop))
    got = scrape(http)
    assert got[("ordergate_rpc_requests_total", (("code", "OK"), ("method", "ListLocations")))] == 1
    assert (
        got[("ordergate_rpc_requests_total", (("code", "UNAUTHENTICATED"), ("method", "GetOrder")))]
        == 1
    )
    rejected = (
        "ordergate_rejected_calls_total",
        (("client", "unauthenticated"), ("reason", "API_KEY_INVALID")),
    )
    assert got[rejected] == 1


def test_a_keys_rate_limit_is_spent_over_either_transport(db: Database, keys: Keys) -> None:
    server = ServerThread(
        db, http_listen="127.0.0.1:0", rate_limit_per_second=0.001, rate_limit_burst=2
    )
    try:
        with grpc.insecure_channel(server.target) as channel:
            Api(channel, keys.shop).orders.ListOrders(
                pb.ListOrdersRequest(), metadata=auth(keys.shop)
            )
        assert connect_json(server, "InventoryService/ListLocations", keys.shop, {})[0] == 200
        status, headers, body = curl(
            "-X",
            "POST",
            f"{server.http}/v1/orders",
            "-H",
            f"Authorization: Bearer {keys.shop}",
            "-H",
            "Content-Type: application/xml",
            data=order_xml("RL-1").encode(),
        )
        assert status == 429
        assert int(headers["retry-after"]) >= 1
        assert _reason(json.loads(body)) == "RATE_LIMITED"
    finally:
        server.stop()


def _post(
    server: ServerThread,
    key: str,
    body: bytes,
    *headers: str,
    query: str = "",
) -> tuple[int, dict[str, str], Any]:
    """POST /v1/orders; `headers` may replace the defaults (Content-Type: application/xml)."""
    named = {h.partition(":")[0].lower() for h in headers}
    defaults = [] if "content-type" in named else ["Content-Type: application/xml"]
    extra = [part for header in (*defaults, *headers) for part in ("-H", header)]
    status, got_headers, answer = curl(
        "-X",
        "POST",
        f"{server.http}/v1/orders{query}",
        "-H",
        f"Authorization: Bearer {key}",
        *extra,
        data=body,
    )
    return status, got_headers, json.loads(answer)


def test_post_orders_answers_as_a_rest_client_expects(
    http: ServerThread, keys: Keys, api: Api
) -> None:
    accepted = (EXAMPLES / "full-order.xml").read_bytes()
    status, headers, answer = _post(http, keys.shop, accepted, "Idempotency-Key: WEB-1002")
    assert status == 201
    order_id = answer["order"]["id"]
    assert answer["order"]["state"] == "ORDER_STATE_ACCEPTED"
    # The same key again: the first answer, marked as a replay.
    status, headers, again = _post(http, keys.shop, accepted, "Idempotency-Key: WEB-1002")
    assert (status, headers["idempotent-replayed"], again["order"]["id"]) == (201, "true", order_id)
    # Stored as any order: read it over gRPC.
    assert (
        api.orders.GetOrder(
            pb.GetOrderRequest(id=str(order_id)), metadata=auth(keys.shop)
        ).order.state
        == order_pb2.ORDER_STATE_ACCEPTED
    )

    held = (EXAMPLES / "invalid" / "unknown-sku.xml").read_bytes()
    status, _, answer = _post(http, keys.shop, held)
    assert (status, answer["order"]["holdReasons"][0]["code"]) == (202, "SKU_UNKNOWN")
    assert _post(http, keys.shop, held)[1]["idempotent-replayed"] == "true"  # no key: by content

    status, _, error = _post(
        http, keys.shop, accepted.replace(b"<Quantity>1</Quantity>", b"<Quantity>2</Quantity>", 1)
    )
    assert (status, _reason(error)) == (409, "DUPLICATE_ORDER_ID")
    status, _, _ = _post(http, keys.shop, order_xml("VO-1").encode(), query="?validate_only=true")
    assert status == 200


@pytest.mark.parametrize(
    ("key_name", "body", "headers", "status", "reason"),
    [
        ("none", b"<x/>", ("Authorization: Bearer og_bad_key",), 401, "API_KEY_INVALID"),
        ("storefront", b"<x/>", (), 403, "ROLE_NOT_ALLOWED"),
        ("shop", b"<x/>", ("Content-Type: application/json",), 415, "CONTENT_TYPE_UNSUPPORTED"),
        ("shop", b"<x/>", ("Idempotency-Key: " + "k" * 201,), 422, "IDEMPOTENCY_KEY_INVALID"),
        ("shop", b"<a>" + b"x" * 1_100_000 + b"</a>", (), 413, "PAYLOAD_TOO_LARGE"),
    ],
)
def test_post_orders_refusals(
    http: ServerThread,
    keys: Keys,
    key_name: str,
    body: bytes,
    headers: tuple[str, ...],
    status: int,
    reason: str,
) -> None:
    key = getattr(keys, key_name) if key_name != "none" else "x"
    got, got_headers, error = _post(http, key, body, *headers)
    assert (got, _reason(error)) == (status, reason)
    if status == 401:
        assert got_headers["www-authenticate"] == "Bearer"


def test_browsers_on_allowed_origins_get_cors(http: ServerThread) -> None:
    status, headers, _ = curl(
        "-X",
        "OPTIONS",
        f"{http.http}/ordergate.v1.InventoryService/GetStockLevels",
        "-H",
        "Origin: https://shop.example",
        "-H",
        "Access-Control-Request-Method: POST",
        "-H",
        "Access-Control-Request-Headers: authorization,content-type,connect-protocol-version",
    )
    assert status == 200
    assert headers["access-control-allow-origin"] == "https://shop.example"
    status, headers, _ = curl(
        "-X",
        "OPTIONS",
        f"{http.http}/v1/orders",
        "-H",
        "Origin: https://evil.example",
        "-H",
        "Access-Control-Request-Method: POST",
    )
    assert "access-control-allow-origin" not in headers


def test_goods_in_over_connect_json(http: ServerThread, keys: Keys) -> None:
    """An ERP that speaks JSON: a purchase order, a receipt, the stock it made, a refusal."""
    status, created = connect_json(
        http,
        "InboundService/CreatePurchaseOrder",
        keys.admin,
        {
            "poNumber": "PO-JSON-1",
            "supplier": "Porzellan AG",
            "locationCode": "WH-MAIN",
            "lines": [{"code": "SKU-1002", "quantity": "12", "expectedDate": "2026-12-24"}],
        },
    )
    assert status == 200, created
    assert created["purchaseOrder"]["state"] == "PURCHASE_ORDER_STATE_OPEN"
    status, received = connect_json(
        http,
        "InboundService/RecordReceipt",
        keys.warehouse,
        {
            "requestId": "6a0f3b8e-5d1c-4e7a-9b2d-3c4e5f6a7b8c",
            "poNumber": "PO-JSON-1",
            "lines": [{"lineNumber": 1, "receivedQuantity": "10", "damagedQuantity": "2"}],
        },
    )
    assert status == 200, received
    assert received["purchaseOrder"]["state"] == "PURCHASE_ORDER_STATE_RECEIVED"
    status, levels = connect_json(
        http,
        "InventoryService/GetStockLevels",
        keys.storefront,
        {"codes": ["SKU-1002"], "locationCodes": ["WH-MAIN"]},
    )
    [level] = levels["items"][0]["locations"]
    assert (level["onHand"], level["quarantine"], level["available"]) == ("310", "2", "310")
    status, refused = connect_json(
        http, "InboundService/ClosePurchaseOrder", keys.admin, {"poNumber": "PO-JSON-1"}
    )
    assert (status, _reason(refused)) == (400, "PURCHASE_ORDER_NOT_OPEN")
