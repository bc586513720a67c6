"""Returns with triage, on SQLite and PostgreSQL, against a real server: authorized only for
shipped pieces not already returning; received into quarantine (on hand, never available);
triaged to restock (sellable, re-checks held orders), rework or dispose; each step guarded,
audited and an event of the original order; a completed return credits the customer."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import grpc
import pytest

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as opb
from ordergate.v1 import pricing_service_pb2 as ppb
from ordergate.v1 import return_service_pb2 as rpb
from ordergate.v1.pricing_service_pb2_grpc import PricingServiceStub
from ordergate.v1.return_service_pb2_grpc import ReturnServiceStub
from ordergate_server.storage import Database, audit

from ..support import Api, Keys, auth, order_xml, rich_error
from .goods_in import get_order, level, until_state
from .test_shipments import _packed, _ship

S = order_pb2
R = rpb
RESTOCK, REWORK, DISPOSE = (
    rpb.TRIAGE_DECISION_RESTOCK,
    rpb.TRIAGE_DECISION_REWORK,
    rpb.TRIAGE_DECISION_DISPOSE,
)


def _shipped(
    api: Api,
    keys: Keys,
    order_id: str = "BUY-1",
    lines: tuple[tuple[str, int], ...] = (("SKU-1002", 3), ("SKU-1003", 2)),
) -> str:
    order = api.submit(order_xml(order_id, list(lines))).order
    assert order.state == S.ORDER_STATE_ACCEPTED
    _packed(api, keys, order.id)
    _ship(api, keys, order.id, tracking_number="00340434161094042557")
    return order.id


def _stub(api: Api) -> ReturnServiceStub:
    return ReturnServiceStub(api.channel)


def _create(
    api: Api, key: str, order_id: str, lines: dict[int, int] | None = None, rma: str = "RMA-1"
) -> rpb.CreateReturnResponse:
    return _stub(api).CreateReturn(
        rpb.CreateReturnRequest(
            rma_id=rma,
            order_id=order_id,
            lines=[S.LineQuantity(line_number=n, quantity=q) for n, q in (lines or {}).items()],
            reason="wrong colour",
        ),
        metadata=auth(key),
    )


def _receive(
    api: Api, key: str, rma: str = "RMA-1", location: str = "WH-MAIN", **more: object
) -> rpb.Return:
    return (
        _stub(api)
        .ReceiveReturn(
            rpb.ReceiveReturnRequest(rma_id=rma, location_code=location, **more),  # type: ignore[arg-type]
            metadata=auth(key),
        )
        .rma
    )


def _triage(api: Api, key: str, *decisions: rpb.TriageLine, rma: str = "RMA-1") -> rpb.Return:
    return (
        _stub(api)
        .TriageReturn(
            rpb.TriageReturnRequest(rma_id=rma, lines=list(decisions)), metadata=auth(key)
        )
        .rma
    )


def test_a_return_from_authorization_to_credit(api: Api, keys: Keys, db: Database) -> None:
    order_id = _shipped(api, keys)
    created = _create(api, keys.shop, order_id, {1: 2, 2: 2})
    assert (created.rma.state, created.rma.client, created.rma.client_order_id) == (
        R.RETURN_STATE_AUTHORIZED,
        "shop-a",
        "BUY-1",
    )
    before = level(api, keys.admin, "SKU-1002")
    received = _receive(api, keys.warehouse)
    assert received.state == R.RETURN_STATE_RECEIVED
    after = level(api, keys.admin, "SKU-1002")
    # On hand in quarantine, never available.
    assert (after.quarantine, after.on_hand, after.available) == (
        2,
        before.on_hand,
        before.available,
    )

    triaged = _triage(
        api,
        keys.warehouse,
        rpb.TriageLine(line_number=1, decision=RESTOCK, quantity=1),
        rpb.TriageLine(line_number=1, decision=REWORK, quantity=1),
        rpb.TriageLine(
            line_number=2, decision=DISPOSE, reason="glaze cracked", withhold_credit=True
        ),
    )
    assert triaged.state == R.RETURN_STATE_TRIAGED
    line1, line2 = triaged.lines
    assert (line1.restocked, line1.in_rework, line1.awaiting_triage) == (1, 1, 0)
    assert (line2.disposed, line2.not_credited) == (2, 2)
    stock = level(api, keys.admin, "SKU-1002")
    assert (stock.on_hand, stock.quarantine) == (before.on_hand + 1, 1)
    assert level(api, keys.admin, "SKU-1003").quarantine == 0

    done = _triage(api, keys.warehouse, rpb.TriageLine(line_number=1, decision=RESTOCK))
    assert done.state == R.RETURN_STATE_COMPLETED
    assert done.credit_note_id.startswith("RMA-")
    assert level(api, keys.admin, "SKU-1002").quarantine == 0
    notes = PricingServiceStub(api.channel).ListCreditNotes(
        ppb.ListCreditNotesRequest(customer_account="C-1001"), metadata=auth(keys.shop)
    )
    [note] = [n for n in notes.credit_notes if n.id == done.credit_note_id]
    # Two SKU-1002 restocked at 9.90; the two disposed SKU-1003 withheld.
    assert (note.amount, note.currency) == ("19.80", "EUR")

    order = api.orders.GetOrder(opb.GetOrderRequest(id=order_id), metadata=auth(keys.shop)).order
    events = [e.type for e in order.events if e.type.startswith("RETURN_")]
    assert events == ["RETURN_AUTHORIZED", "RETURN_RECEIVED", "RETURN_TRIAGED", "RETURN_COMPLETED"]
    assert order.state == S.ORDER_STATE_DISPATCHED  # a return does not change the order's state
    with db.reader() as conn:
        entries = audit.entries_for(conn, "return/shop-a/RMA-1")
    assert [(e.action, e.actor) for e in entries] == [
        ("return.authorize", "shop-a"),
        ("return.receive", "dc-scanner"),
        ("return.triage", "dc-scanner"),
        ("return.triage", "dc-scanner"),
    ]


def test_more_than_shipped_and_not_yet_returned_is_refused(api: Api, keys: Keys) -> None:
    order_id = _shipped(api, keys)
    with pytest.raises(grpc.RpcError) as too_many:
        _create(api, keys.shop, order_id, {1: 4})
    error = rich_error(too_many.value)
    assert (error.code, error.reason, error.metadata["line_number"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "RETURN_EXCEEDS_SHIPPED",
        "1",
    )
    _create(api, keys.shop, order_id, {1: 2})
    with pytest.raises(grpc.RpcError) as again:
        _create(api, keys.operations, order_id, {1: 2}, rma="RMA-2")
    assert rich_error(again.value).reason == "RETURN_EXCEEDS_SHIPPED"
    rest = _create(api, keys.operations, order_id, rma="RMA-2")  # no lines: whatever is left
    assert [(line.line_number, line.quantity) for line in rest.rma.lines] == [(1, 1), (2, 2)]
    with pytest.raises(grpc.RpcError) as nothing_left:
        _create(api, keys.shop, order_id, rma="RMA-3")
    assert rich_error(nothing_left.value).reason == "RETURN_EXCEEDS_SHIPPED"


def test_an_order_not_shipped_cannot_be_returned(api: Api, keys: Keys) -> None:
    order = api.submit(order_xml("NOT-YET", [("SKU-1002", 1)])).order
    with pytest.raises(grpc.RpcError) as refused:
        _create(api, keys.shop, order.id)
    assert rich_error(refused.value).reason == "RETURN_EXCEEDS_SHIPPED"


def test_two_returns_racing_for_the_last_pieces_one_wins(api: Api, keys: Keys) -> None:
    order_id = _shipped(api, keys, lines=(("SKU-1002", 3),))

    def attempt(n: int) -> str:
        try:
            _create(api, keys.operations, order_id, {1: 2}, rma=f"RACE-{n}")
            return "created"
        except grpc.RpcError as exc:
            return rich_error(exc).reason

    with ThreadPoolExecutor(max_workers=4) as pool:
        outcomes = sorted(pool.map(attempt, range(4)))
    assert outcomes == ["RETURN_EXCEEDS_SHIPPED"] * 3 + ["created"]


def test_the_same_rma_again_is_answered_other_content_refused(api: Api, keys: Keys) -> None:
    order_id = _shipped(api, keys)
    first = _create(api, keys.shop, order_id, {1: 1})
    again = _create(api, keys.shop, order_id, {1: 1})
    assert (first.replayed, again.replayed) == (False, True)
    with pytest.raises(grpc.RpcError) as other:
        _create(api, keys.shop, order_id, {1: 2})
    assert (other.value.code(), rich_error(other.value).reason) == (
        grpc.StatusCode.ALREADY_EXISTS,
        "RETURN_EXISTS",
    )


def test_states_are_guarded(api: Api, keys: Keys) -> None:
    order_id = _shipped(api, keys)
    _create(api, keys.shop, order_id, {1: 2})
    with pytest.raises(grpc.RpcError) as early:
        _triage(api, keys.warehouse, rpb.TriageLine(line_number=1, decision=RESTOCK))
    assert rich_error(early.value).reason == "RETURN_STATE_INVALID"
    _receive(api, keys.warehouse, lines=[S.LineQuantity(line_number=1, quantity=1)])
    with pytest.raises(grpc.RpcError) as twice:
        _receive(api, keys.warehouse)
    assert rich_error(twice.value).reason == "RETURN_STATE_INVALID"
    with pytest.raises(grpc.RpcError) as more:
        _triage(api, keys.warehouse, rpb.TriageLine(line_number=1, decision=RESTOCK, quantity=2))
    assert rich_error(more.value).reason == "TRIAGE_EXCEEDS_RECEIVED"
    with pytest.raises(grpc.RpcError) as no_reason:
        _triage(api, keys.warehouse, rpb.TriageLine(line_number=1, decision=DISPOSE))
    assert rich_error(no_reason.value).reason == "FIELD_MISSING"
    done = _triage(api, keys.warehouse, rpb.TriageLine(line_number=1, decision=RESTOCK))
    assert done.state == R.RETURN_STATE_COMPLETED
    # The piece authorized but never received can be returned again.
    assert [
        line.quantity for line in _create(api, keys.shop, order_id, {1: 2}, rma="RMA-2").rma.lines
    ] == [2]


def test_a_restock_releases_an_order_held_for_stock(api: Api, keys: Keys) -> None:
    order_id = _shipped(api, keys, lines=(("SKU-1003", 40),))  # every SKU-1003 there was
    held = api.submit(order_xml("WAITS", [("SKU-1003", 1)])).order
    assert held.state == S.ORDER_STATE_ON_HOLD
    _create(api, keys.shop, order_id, {1: 1})
    _receive(api, keys.warehouse)
    assert get_order(api, keys.shop, held.id).state == S.ORDER_STATE_ON_HOLD  # quarantine
    _triage(api, keys.warehouse, rpb.TriageLine(line_number=1, decision=RESTOCK))
    until_state(api, keys.shop, held.id, S.ORDER_STATE_ACCEPTED)


def test_tenants_and_roles(api: Api, keys: Keys) -> None:
    order_id = _shipped(api, keys)
    with pytest.raises(grpc.RpcError) as foreign:
        _create(api, keys.other_shop, order_id)
    assert foreign.value.code() == grpc.StatusCode.NOT_FOUND
    _create(api, keys.shop, order_id, {1: 1})
    with pytest.raises(grpc.RpcError) as hidden:
        _stub(api).GetReturn(rpb.GetReturnRequest(rma_id="RMA-1"), metadata=auth(keys.other_shop))
    assert hidden.value.code() == grpc.StatusCode.NOT_FOUND
    assert (
        _stub(api).ListReturns(rpb.ListReturnsRequest(), metadata=auth(keys.other_shop)).returns
        == []
    )
    for key in (keys.shop, keys.finance, keys.storefront):
        with pytest.raises(grpc.RpcError) as refused:
            _receive(api, key)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    listed = _stub(api).ListReturns(
        rpb.ListReturnsRequest(state=R.RETURN_STATE_AUTHORIZED, order_id=order_id),
        metadata=auth(keys.finance),
    )
    assert [r.rma_id for r in listed.returns] == ["RMA-1"]
