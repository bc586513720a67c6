"""The field limits: complete for the contract, in step with storage and with the docs."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

from google.protobuf import descriptor_pool
from sqlalchemy import Column, Integer, String

from ordergate_server.api import request_checks
from ordergate_server.api.server import SERVICE_NAMES
from ordergate_server.domain import limits
from ordergate_server.storage import tables as t

from ..support import ROOT

POOL = descriptor_pool.Default()
REQUESTS = [
    method.input_type
    for service in SERVICE_NAMES
    for method in POOL.FindServiceByName(service).methods
]


def test_every_request_field_has_its_check() -> None:
    """A 64-bit field without a range would fail the first request that sets it."""
    for request in REQUESTS:
        for field in request_checks.request_fields(request):
            request_checks._check_for(field)


def test_the_limits_are_the_columns_lengths() -> None:
    def length(column: Column[Any]) -> int:
        assert isinstance(column.type, String)
        assert column.type.length is not None
        return column.type.length

    for column in (
        t.orders.c.client_order_id,
        t.orders.c.customer_account,
        t.orders.c.channel,
        t.order_lines.c.submitted_code,
        t.order_lines.c.sku,
        t.products.c.sku,
        t.locations.c.code,
        t.customers.c.account,
        t.submissions.c.request_id,
        t.stock_changes.c.request_id,
    ):
        assert length(column) == limits.CODE_CHARS, column
    assert length(t.orders.c.currency) == limits.CURRENCY_CHARS
    for column in (t.order_lines.c.unit_price, t.products.c.list_price, t.credit_notes.c.amount):
        assert length(column) == limits.DECIMAL_CHARS, column
    for column in (t.products.c.name, t.locations.c.name, t.audit_entries.c.subject):
        assert length(column) == limits.NAME_CHARS, column
    assert length(t.clients.c.name) == request_checks.TEXT_LIMITS["client"]
    assert length(t.audit_entries.c.actor) == request_checks.TEXT_LIMITS["actor"]
    for column in (t.order_lines.c.quantity, t.stock.c.on_hand, t.stock.c.allocated):
        assert isinstance(column.type, Integer)
    assert limits.MAX_PIECES == limits.MAX_INTEGER == 2**31 - 1  # a 32-bit INTEGER


def test_docs_list_every_limit() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "field_limits.py"), "--check"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
