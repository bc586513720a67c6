"""Reading order documents: hardened parsing, the XSD, and the mapping to an OrderDraft."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ordergate_server.domain.model import OrderDraft
from ordergate_server.formats import DocumentLimits, UnreadableOrder, read_order
from ordergate_server.formats.safe_xml import XmlRejected, parse_untrusted

from ..support import EXAMPLES, order_xml, recording_http_server


def reasons(payload: bytes) -> list[str]:
    result = read_order(payload)
    assert isinstance(result, UnreadableOrder), result
    return [r.code.value for r in result.reasons]


def test_full_example_maps_every_field() -> None:
    draft = read_order((EXAMPLES / "full-order.xml").read_bytes())
    assert isinstance(draft, OrderDraft)
    assert draft.client_order_id == "WEB-1002"
    assert draft.order_time == datetime(2026, 11, 23, 8, 15, tzinfo=UTC)
    assert (draft.customer_account, draft.channel, draft.currency) == ("C-1001", "web", "EUR")
    address = draft.delivery.address
    assert address.street_lines == ("Lindenstraße 12", "Hinterhaus, 2. OG")
    assert (address.city, address.postal_code, address.region, address.country_code) == (
        "Hamburg",
        "20095",
        "HH",
        "DE",
    )
    assert draft.delivery.phone == "+49 40 123-4567"
    assert draft.delivery.email == "goods-in@cafe-lindner.example"
    assert draft.delivery.window_start == datetime(2026, 11, 25, 7, 0, tzinfo=UTC)
    assert draft.delivery.window_end == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)
    assert draft.delivery.special_handling.startswith("Fragile")
    assert [(ln.line_number, ln.code, ln.code_is_barcode, ln.quantity) for ln in draft.lines] == [
        (1, "SKU-1003", False, 1),
        (2, "4006381333948", True, 4),
        (3, "CUP-SET-6", False, 2),
        (4, "SKU-2001", False, 1),
    ]
    assert draft.lines[0].unit_price == Decimal("149.00")
    assert draft.notes.startswith("Invoice")


def test_comments_and_processing_instructions_between_elements_change_nothing() -> None:
    plain = (EXAMPLES / "full-order.xml").read_text()
    noisy = (
        plain.replace("<Street>", "<!-- gate 3 --><?scanner x?><Street>")
        .replace("<Line>", "<!-- line --><Line><!-- first -->")
        .replace("<Phone>", "<?pi?><Phone>")
    )
    assert noisy.count("<!--") > 4
    assert read_order(noisy.encode()) == read_order(plain.encode())


def test_date_only_order_date_is_midnight_utc() -> None:
    draft = read_order((EXAMPLES / "minimal-order.xml").read_bytes())
    assert isinstance(draft, OrderDraft)
    assert draft.order_time == datetime(2026, 11, 23, tzinfo=UTC)


def test_schema_errors_name_a_readable_path_and_keep_the_order_id() -> None:
    result = read_order(order_xml("K-1").replace("<LineNumber>1</LineNumber>", "").encode())
    assert isinstance(result, UnreadableOrder)
    assert result.client_order_id == "K-1"
    [reason] = result.reasons
    assert reason.code.value == "SCHEMA_INVALID"
    assert reason.field == "Order/Lines/Line/Sku"
    assert "Expected is ( LineNumber )" in reason.message


def test_other_document_types_are_named() -> None:
    result = read_order(b"<Invoice xmlns='urn:example:invoice'/>")
    assert isinstance(result, UnreadableOrder)
    assert "Unknown document type" in result.reasons[0].message


@pytest.mark.parametrize(
    ("payload", "code"),
    [
        (b"", "XML_MALFORMED"),
        (b"   \n", "XML_MALFORMED"),
        (b"not xml at all", "XML_MALFORMED"),
        (b"<Order>", "XML_MALFORMED"),
        (b"/etc/passwd", "XML_MALFORMED"),  # a path is just bytes, never opened
        (b"\x00\x01\x02", "XML_MALFORMED"),
        ("<?xml version='1.0' encoding='UTF-8'?><a>\xe9</a>".encode("latin-1"), "XML_MALFORMED"),
        (
            b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
            b'<!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><a>&lol2;</a>',
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        (
            b'<?xml version="1.0"?><!DOCTYPE a [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><a>&xxe;</a>',
            "XML_FORBIDDEN_CONSTRUCT",
        ),
        (b'<!DOCTYPE a SYSTEM "http://127.0.0.1:9/evil.dtd"><a/>', "XML_FORBIDDEN_CONSTRUCT"),
        (b'<!DOCTYPE a SYSTEM "/etc/passwd"><a/>', "XML_FORBIDDEN_CONSTRUCT"),
        ("<!DOCTYPE a><a/>".encode("utf-16"), "XML_FORBIDDEN_CONSTRUCT"),
        ("<a/>".encode("utf-16-le"), "XML_MALFORMED"),  # UTF-16 without a BOM
        ("<a/>".encode("utf-32"), "XML_MALFORMED"),
        (b'<?xml version="1.0" encoding="UTF-16"?><a/>', "XML_MALFORMED"),  # mislabelled
        (b'<?xml version="1.0" encoding="ISO-8859-1"?><a>caf\xe9</a>', "XML_MALFORMED"),
        (b'<?xml version="1.0" encoding="US-ASCII"?><a>caf\xc3\xa9</a>', "XML_MALFORMED"),
        (b"<a>\x01</a>", "XML_MALFORMED"),  # a control character
        (b"<a>" * 40 + b"</a>" * 40, "XML_LIMIT_EXCEEDED"),
        (b"<a>" * 10_000 + b"</a>" * 10_000, "XML_LIMIT_EXCEEDED"),
    ],
)
def test_hostile_or_broken_payloads_get_a_clear_reason(payload: bytes, code: str) -> None:
    assert reasons(payload) == [code]


def test_element_count_is_bounded() -> None:
    payload = b"<a>" + b"<b/>" * 200 + b"</a>"
    result = read_order(payload, DocumentLimits(max_depth=32, max_elements=100))
    assert isinstance(result, UnreadableOrder)
    assert result.reasons[0].code.value == "XML_LIMIT_EXCEEDED"


def nested(levels: int, innermost: str = "") -> bytes:
    return ("<a>" * levels + innermost + "</a>" * levels).encode()


@pytest.mark.parametrize(
    ("payload", "fits"),
    [
        (nested(5), True),  # the root is level 1: five levels, the most allowed
        (nested(6), False),
        (nested(5, "text only"), True),  # text is not a level
        (nested(5, "<!-- c --><?pi x?>"), True),  # comments and PIs are dropped unread
        (b"<a>" + b"<b/>" * 9 + b"</a>", True),  # ten elements, the most allowed
        (b"<a>" + b"<b/>" * 10 + b"</a>", False),
        (b"<a>" + b"<b/>" * 9 + b"<!-- c --><?pi?></a>", True),
        (b"<a>" + b"<b><c/></b>" * 5 + b"</a>", False),  # eleven, nested
    ],
)
def test_depth_and_size_limits_hold_exactly_at_the_boundary(payload: bytes, fits: bool) -> None:
    limits = DocumentLimits(max_depth=5, max_elements=10)
    if fits:
        parse_untrusted(payload, limits)
    else:
        with pytest.raises(XmlRejected) as rejected:
            parse_untrusted(payload, limits)
        assert rejected.value.reason.code.value == "XML_LIMIT_EXCEEDED"


@pytest.fixture
def loopback_listener() -> Iterator[tuple[str, list[str]]]:
    with recording_http_server() as listener:
        yield listener


def test_no_payload_reaches_the_network(loopback_listener: tuple[str, list[str]]) -> None:
    url, hits = loopback_listener
    payloads = [
        url.encode(),
        f'<!DOCTYPE a SYSTEM "{url}/dtd"><a/>'.encode(),
        f'<!DOCTYPE a [<!ENTITY % p SYSTEM "{url}/pe"> %p;]><a/>'.encode(),
        f'<!DOCTYPE a [<!ENTITY e SYSTEM "{url}/e">]><a>&e;</a>'.encode(),
        order_xml()
        .replace(
            'xmlns="urn:ordergate:order:v1"',
            'xmlns="urn:ordergate:order:v1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
            f'xsi:schemaLocation="urn:ordergate:order:v1 {url}/evil.xsd"',
        )
        .encode(),
        f'<a xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{url}/i"/></a>'.encode(),
    ]
    for payload in payloads:
        read_order(payload)
    assert hits == []


def test_an_external_dtd_file_is_never_opened(tmp_path: Path) -> None:
    # libxml2 would read this file (and fail on it) if the DOCTYPE ever reached it.
    dtd = tmp_path / "broken.dtd"
    dtd.write_text("<!ENTITY broken")
    result = read_order(f'<!DOCTYPE a SYSTEM "{dtd}"><a/>'.encode())
    assert isinstance(result, UnreadableOrder)
    assert "broken.dtd" not in result.reasons[0].message
    assert result.reasons[0].code.value == "XML_FORBIDDEN_CONSTRUCT"


def test_xsi_schema_location_is_ignored_and_the_order_still_reads() -> None:
    xml = order_xml().replace(
        'xmlns="urn:ordergate:order:v1"',
        'xmlns="urn:ordergate:order:v1" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '
        'xsi:schemaLocation="urn:ordergate:order:v1 /etc/passwd"',
    )
    assert isinstance(read_order(xml.encode()), OrderDraft)


def test_a_byte_order_mark_is_accepted() -> None:
    assert isinstance(read_order(b"\xef\xbb\xbf" + order_xml().encode()), OrderDraft)


def test_utf16_with_declaration_is_read() -> None:
    xml = order_xml().replace('encoding="UTF-8"', 'encoding="UTF-16"')
    assert isinstance(read_order(xml.encode("utf-16")), OrderDraft)


def test_examples_folder_is_complete() -> None:
    names = {p.name for p in Path(EXAMPLES).glob("*.xml")}
    assert {"minimal-order.xml", "full-order.xml"} <= names
    assert len(list((EXAMPLES / "invalid").glob("*.xml"))) >= 5


_FIRST_READS = """
import sys, threading
from concurrent.futures import ThreadPoolExecutor
from ordergate_server.domain.model import OrderDraft
from ordergate_server.formats import read_order
payload = sys.stdin.buffer.read()
barrier = threading.Barrier(8)
def first_read(_):
    barrier.wait()
    return isinstance(read_order(payload), OrderDraft)
with ThreadPoolExecutor(8) as pool:
    sys.exit(0 if all(pool.map(first_read, range(8))) else 1)
"""


def test_threads_reading_the_first_orders_of_a_fresh_process_at_once() -> None:
    # The race is in libxml2's one-time setup, so each round needs a new process; without the
    # compile lock about half of such processes failed.
    for _ in range(6):
        run = subprocess.run(
            [sys.executable, "-c", _FIRST_READS], input=order_xml().encode(), capture_output=True
        )
        assert run.returncode == 0, run.stderr.decode()[-2000:]
