"""Hostile and broken goods-in CSV files are refused whole, by line and column, before anything
is applied (service/inbound/csv_drop.py)."""

from __future__ import annotations

import pytest

from ordergate_server.service.inbound.csv_drop import PURCHASE_ORDERS, RETURNS, Refused, parse

HEADER = b"order-id,sku,quantity,delivery-date,special-notes\n"


@pytest.mark.parametrize(
    ("content", "reason", "line"),
    [
        (b"", "FILE_EMPTY", 1),
        (HEADER, "FILE_EMPTY", 1),
        (HEADER + b"PO-1,SKU-1,1,2026-12-20,\xff\xfe\n", "ENCODING_INVALID", 2),
        (HEADER + b'PO-1,SKU-1,1,2026-12-20,"unclosed\n', "CSV_MALFORMED", 2),
        (HEADER + b"PO-1,SKU-1,1\n", "ROW_INVALID", 2),
        (HEADER.replace(b"sku", b"sku,sku") + b"PO-1,A,A,1,2026-12-20,\n", "HEADER_INVALID", 1),
        (
            HEADER.replace(b"special-notes", b"special-notes,price") + b"P,S,1,2026-12-20,,1\n",
            "HEADER_INVALID",
            1,
        ),
    ],
)
def test_a_broken_file_is_refused_with_where(content: bytes, reason: str, line: int) -> None:
    with pytest.raises(Refused) as refused:
        parse(content)
    assert refused.value.reason == reason
    assert refused.value.problems[0]["line"] == line


def test_the_header_tells_the_kind_in_any_case_and_order_with_a_bom() -> None:
    kind, rows = parse(
        b"\xef\xbb\xbfDISPOSITION,Reason,original-order-id,return-id\r\nRESTOCK,x,O-1,R-1\r\n"
    )
    assert kind is RETURNS
    assert (rows[0].line, rows[0].get("return-id")) == (2, "R-1")
    kind, _ = parse(HEADER + b"PO-1,SKU-1,1,2026-12-20,\n")
    assert kind is PURCHASE_ORDERS
