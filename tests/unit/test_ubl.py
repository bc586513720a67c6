"""The UBL mapping and OrderResponse as pure functions (the server-level tests are in
tests/integration/test_ubl_orders.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lxml import etree

from ordergate_server.domain.model import Delivery, OrderDraft, OrderState
from ordergate_server.domain.records import OrderRecord
from ordergate_server.formats import read_order
from ordergate_server.formats.schemas import UBL_ORDER_RESPONSE_XSD, compiled
from ordergate_server.formats.ubl_response import order_response, response_code

from ..support import EXAMPLES

OASIS = (EXAMPLES / "ubl" / "UBL-Order-2.1-Example.xml").read_bytes()


@pytest.mark.parametrize(
    ("state", "code"),
    [
        (OrderState.ACCEPTED, "AP"),
        (OrderState.PICKING, "AP"),
        (OrderState.DELIVERED, "AP"),
        (OrderState.ON_HOLD, "AB"),
        (OrderState.CANCELLED, "RE"),
    ],
)
def test_response_codes_follow_the_order_state(state: OrderState, code: str) -> None:
    assert response_code(state) == code


def test_a_delivery_period_given_as_dates_covers_the_whole_last_day() -> None:
    draft = read_order(OASIS)
    assert isinstance(draft, OrderDraft)
    assert draft.delivery.window_start == datetime(2010, 2, 10, tzinfo=UTC)
    assert draft.delivery.window_end == datetime(2010, 2, 25, 23, 59, 59, tzinfo=UTC)


def test_a_response_for_a_validate_only_answer_is_valid_without_an_order_id() -> None:
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    order = OrderRecord(
        id="",
        client="shop-a",
        client_order_id="",
        customer_account="",
        channel="ubl",
        currency="",
        order_time=None,
        created_at=now,
        updated_at=now,
        state=OrderState.ON_HOLD,
        hold_reasons=(),
        delivery=Delivery(),
        lines=(),
        notes="",
        allocation_location="",
        problem_submission=True,
        content_sha256="",
    )
    document = etree.fromstring(order_response(order, seller_name="DC", issued=now))
    schema = compiled(UBL_ORDER_RESPONSE_XSD)
    assert schema.validate(document), schema.error_log
