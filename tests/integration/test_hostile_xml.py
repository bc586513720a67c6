"""The hostile-XML suite, through the real server on both databases.

Each payload gets a clear answer (a problem submission with a stable hold code, or a refusal
with a stable reason); afterwards no file was opened, no network request was made, and the
server still serves. "No file opened" is observed with a named pipe: opening it for reading
would release a writer waiting on it. "No network" is observed with an HTTP listener on
loopback that counts every request.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ordergate.v1 import order_pb2
from ordergate_server.storage import Database

from ..support import Api, Keys, ServerThread, order_xml, recording_http_server, rich_error


@dataclass
class Traps:
    """The listener's URL and hits, and a named pipe that records whether anyone opened it."""

    url: str
    hits: list[str]
    pipe: Path
    pipe_opened: threading.Event


@pytest.fixture
def traps(tmp_path: Path) -> Iterator[Traps]:
    pipe = tmp_path / "secret.txt"
    os.mkfifo(pipe)
    opened = threading.Event()
    stop = threading.Event()

    def wait_for_a_reader() -> None:
        # Opening a FIFO for writing blocks until someone opens it for reading.
        with open(pipe, "wb") as writer:
            if not stop.is_set():
                opened.set()
                writer.write(b"SECRET-FROM-DISK")

    waiter = threading.Thread(target=wait_for_a_reader, daemon=True)
    waiter.start()
    with recording_http_server() as (url, hits):
        yield Traps(url, hits, pipe, opened)
    stop.set()
    # Release the waiting writer ourselves.
    fd = os.open(pipe, os.O_RDONLY | os.O_NONBLOCK)
    waiter.join(timeout=5)
    os.close(fd)


def _cases(traps: Traps) -> dict[str, tuple[bytes, str]]:
    """name -> (payload, the hold code it must get)."""
    url, pipe = traps.url, traps.pipe
    big_entity = "A" * 50_000
    return {
        "billion-laughs": (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            + b"".join(
                f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10 if i > 1 else "&lol;" * 10}">'.encode()
                for i in range(1, 10)
            )
            + b"]><Order>&lol9;</Order>",
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "quadratic-blowup": (
            f'<!DOCTYPE a [<!ENTITY x "{big_entity}">]><a>{"&x;" * 10_000}</a>'.encode(),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "xxe-file": (
            f'<!DOCTYPE a [<!ENTITY x SYSTEM "file://{pipe}">]><a>&x;</a>'.encode(),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "xxe-http": (
            f'<!DOCTYPE a [<!ENTITY x SYSTEM "{url}/xxe">]><a>&x;</a>'.encode(),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "external-dtd-http": (
            f'<!DOCTYPE Order SYSTEM "{url}/order.dtd"><Order/>'.encode(),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "external-dtd-file": (
            f'<!DOCTYPE Order SYSTEM "{pipe}"><Order/>'.encode(),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "parameter-entities": (
            f'<!DOCTYPE a [<!ENTITY % p SYSTEM "{url}/pe.dtd"> %p;]><a>&leak;</a>'.encode(),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "utf16-doctype": (
            f'<!DOCTYPE a [<!ENTITY x SYSTEM "{url}/u16">]><a>&x;</a>'.encode("utf-16"),
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        "xinclude": (
            order_xml("XI-1")
            .replace(
                "<Channel>web</Channel>",
                f'<Channel>web</Channel><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" '
                f'href="{url}/xi"/>',
            )
            .encode(),
            "SCHEMA_INVALID",
        ),
        "deep-nesting-10000": (b"<a>" * 10_000 + b"</a>" * 10_000, "XML_LIMIT_EXCEEDED"),
        "a-file-path": (str(pipe).encode(), "XML_MALFORMED"),
        "a-file-url": (f"file://{pipe}".encode(), "XML_MALFORMED"),
        "a-url": (f"{url}/order.xml".encode(), "XML_MALFORMED"),
        "latin-1-undeclared": ("<Order>caf\u00e9</Order>".encode("latin-1"), "XML_MALFORMED"),
        "declared-latin-1": (
            '<?xml version="1.0" encoding="ISO-8859-1"?><Order>caf\u00e9</Order>'.encode("latin-1"),
            "XML_MALFORMED",
        ),
        "utf8-labelled-utf16": (
            b'<?xml version="1.0" encoding="UTF-16"?><Order/>',
            "XML_MALFORMED",
        ),
        "utf16-without-bom": ("<Order/>".encode("utf-16-le"), "XML_MALFORMED"),
        "utf32-bom": ("<Order/>".encode("utf-32"), "XML_MALFORMED"),
        "control-characters": (b"<Order>\x01\x02\x1b</Order>", "XML_MALFORMED"),
        "nul-bytes": (b"<Order>\x00</Order>", "XML_MALFORMED"),
        "empty": (b"", "XML_MALFORMED"),
        "whitespace-only": (b" \r\n\t ", "XML_MALFORMED"),
    }


CASE_NAMES = list(_cases(Traps("http://x", [], Path("/nonexistent"), threading.Event())).keys())


def _still_serving(server: ServerThread, api: Api, tag: str) -> None:
    with grpc.insecure_channel(server.target) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
    assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert api.submit(order_xml(f"AFTER-{tag}")).order.state == order_pb2.ORDER_STATE_ACCEPTED


def _nothing_touched(traps: Traps) -> None:
    assert traps.hits == [], f"the network was reached: {traps.hits}"
    assert not traps.pipe_opened.wait(0.05), "a file named in the payload was opened"


@pytest.mark.parametrize("name", CASE_NAMES)
def test_hostile_payload_gets_a_clear_answer_and_touches_nothing(
    server: ServerThread, api: Api, traps: Traps, name: str
) -> None:
    payload, code = _cases(traps)[name]

    order = api.submit(payload).order

    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    assert order.problem_submission
    assert [r.code for r in order.hold_reasons] == [code]
    assert order.hold_reasons[0].message  # a sentence a person can act on
    assert "LEAKED" not in str(order)
    assert "SECRET-FROM-DISK" not in str(order)
    _nothing_touched(traps)
    _still_serving(server, api, name)


def test_byte_order_marks_are_fine(api: Api, traps: Traps) -> None:
    utf8 = b"\xef\xbb\xbf" + order_xml("BOM-8").encode()
    utf16 = order_xml("BOM-16").replace('encoding="UTF-8"', 'encoding="UTF-16"').encode("utf-16")
    for payload in (utf8, utf16):
        assert api.submit(payload).order.state == order_pb2.ORDER_STATE_ACCEPTED


def test_a_schema_location_pointing_at_loopback_is_never_fetched(
    server: ServerThread, api: Api, traps: Traps
) -> None:
    hinted = order_xml("LOC-1").replace(
        'xmlns="urn:ordergate:order:v1"',
        'xmlns="urn:ordergate:order:v1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        f'xsi:schemaLocation="urn:ordergate:order:v1 {traps.url}/evil.xsd"',
    )
    assert api.submit(hinted).order.state == order_pb2.ORDER_STATE_ACCEPTED
    _nothing_touched(traps)


def test_a_payload_over_the_size_limit_is_refused_and_not_stored(
    server: ServerThread, api: Api, traps: Traps
) -> None:
    oversize = order_xml("BIG-1").replace(
        "<Channel>web</Channel>", "<!--" + "x" * 1_100_000 + "-->"
    )
    with pytest.raises(grpc.RpcError) as refused:
        api.submit(oversize)
    error = rich_error(refused.value)
    assert error.code == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert error.reason == "PAYLOAD_TOO_LARGE"
    with pytest.raises(grpc.RpcError) as beyond_transport:  # larger than gRPC would even read
        api.submit(b"<a>" + b"x" * 3_000_000 + b"</a>")
    assert beyond_transport.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    _still_serving(server, api, "oversize")


def test_a_five_megabyte_attribute_under_a_raised_limit_is_answered(
    db: Database, keys: Keys, traps: Traps
) -> None:
    roomy = ServerThread(db, max_order_bytes=8 * 1024 * 1024)
    try:
        with grpc.insecure_channel(
            roomy.target, options=[("grpc.max_send_message_length", 16 * 1024 * 1024)]
        ) as channel:
            api = Api(channel, keys.shop)
            payload = order_xml("ATTR-1").replace("<Order ", f'<Order note="{"A" * 5_000_000}" ')
            order = api.submit(payload).order
            assert order.problem_submission
            assert [r.code for r in order.hold_reasons] == ["SCHEMA_INVALID"]
            _nothing_touched(traps)
            _still_serving(roomy, api, "attr")
    finally:
        roomy.stop()
