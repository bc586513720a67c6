"""The operations console in a real browser: Debian's chromium, driven by Playwright (no browser
download), against a real server on 127.0.0.1, on SQLite and PostgreSQL. What a warehouse team
does in it, and what an attacker with a session or a page on another site cannot.

With CONSOLE_SCREENSHOTS=DIR the tests save the main pages there (docs/console/ holds the
ones docs/console.md shows: `make screenshots`)."""

from __future__ import annotations

import io
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import grpc
import pytest

from ordergate.v1 import audit_service_pb2 as apb
from ordergate.v1 import audit_service_pb2_grpc, order_pb2
from ordergate.v1 import order_service_pb2 as pb
from ordergate_server import cli
from ordergate_server.domain.access import Role
from ordergate_server.service import staff
from ordergate_server.storage import Database

from ..conftest import UNDER_CI
from ..support import Api, Keys, ServerThread, auth, order_xml

try:
    from playwright.sync_api import Browser, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the dev environment has it
    sync_playwright = None  # type: ignore[assignment]

PASSWORD = "correct horse battery"
SCREENSHOTS = os.environ.get("CONSOLE_SCREENSHOTS", "")


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None or sync_playwright is None:
        message = "chromium not installed (Debian: apt install chromium); .ci/run installs it"
        if UNDER_CI:
            pytest.fail(f"{message} (CI=true requires it)", pytrace=False)
        pytest.skip(message)
    return found


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = _chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=["--no-sandbox"])
        yield launched
        launched.close()


@pytest.fixture
def console(db: Database, keys: Keys) -> Iterator[ServerThread]:
    server = ServerThread(db, http_listen="127.0.0.1:0")
    yield server
    server.stop()


@pytest.fixture
def api(console: ServerThread, keys: Keys) -> Iterator[Api]:
    with grpc.insecure_channel(console.target) as channel:
        yield Api(channel, keys.shop)


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    opened = context.new_page()
    yield opened
    context.close()


def person(db: Database, username: str, role: Role) -> str:
    staff.create_user(db, username, role, PASSWORD, actor="test")
    return username


def sign_in(page: Page, console: ServerThread, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{console.http}/console/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def shot(page: Page, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)


def get_order(api: Api, order_id: str, key: str) -> order_pb2.Order:
    answer = api.orders.GetOrder(pb.GetOrderRequest(id=order_id), metadata=auth(key))
    return answer.order


def audit_entries(api: Api, key: str, **filters: str) -> list[apb.AuditEntry]:
    stub = audit_service_pb2_grpc.AuditServiceStub(api.channel)
    request = apb.ListAuditEntriesRequest(**filters)  # type: ignore[arg-type]
    return list(stub.ListAuditEntries(request, metadata=auth(key)).entries)


def held_for_special_handling(api: Api, number: str) -> order_pb2.Order:
    order = api.submit(order_xml(number, [("SKU-2001", 1)])).order
    assert order.state == order_pb2.ORDER_STATE_ON_HOLD
    return order


# --- signing in and out ----------------------------------------------------------------------


def test_sign_in_shows_the_queue_and_sign_out_ends_the_session(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    held_for_special_handling(api, "SIGN-1")
    person(db, "ana", Role.MANAGER)
    page.goto(f"{console.http}/console/held")
    expect(page).to_have_url(f"{console.http}/console/sign-in?next=/console/held")
    sign_in(page, console, "ana", "not the password")
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")

    page.get_by_label("Username").fill("ana")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(f"{console.http}/console/held")
    expect(page.get_by_text("ana · manager")).to_be_visible()
    expect(page.get_by_role("link", name="SIGN-1")).to_be_visible()
    expect(page.get_by_role("link", name="SPECIAL_HANDLING_REQUIRED 1")).to_be_visible()
    cookie = next(c for c in page.context.cookies() if c["name"] == "ordergate_console")
    assert cookie["httpOnly"]
    assert cookie["secure"]
    assert cookie["sameSite"] == "Strict"
    shot(page, "held-orders")

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(f"{console.http}/console/sign-in")
    page.goto(f"{console.http}/console/held")  # the old cookie signs nobody in
    expect(page.get_by_label("Password")).to_be_visible()
    actions = [e.action for e in audit_entries(api, keys.manager, subject="user/ana")]
    assert actions == ["user.create", "user.sign_in", "user.sign_out"]


def test_five_wrong_passwords_lock_the_account_even_for_the_right_one(
    page: Page, console: ServerThread, db: Database
) -> None:
    person(db, "ana", Role.MANAGER)
    for _ in range(staff.MAX_FAILED_LOGINS):
        sign_in(page, console, "ana", "guessing wrong")
        expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    sign_in(page, console, "ana")
    expect(page.get_by_role("alert")).to_contain_text("locked")
    assert page.url.endswith("/console/sign-in")


def test_a_session_ends_when_idle(page: Page, db: Database, keys: Keys) -> None:
    server = ServerThread(db, http_listen="127.0.0.1:0", console_idle_minutes=0.02)
    try:
        person(db, "ana", Role.MANAGER)
        sign_in(page, server, "ana")
        expect(page.get_by_text("ana · manager")).to_be_visible()
        page.wait_for_timeout(2000)  # idle longer than 1.2 s
        page.goto(f"{server.http}/console/held")
        expect(page.get_by_label("Password")).to_be_visible()
    finally:
        server.stop()


# --- the exception queue ---------------------------------------------------------------------


def test_a_manager_releases_a_held_order_and_the_api_then_answers_accepted(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    held = held_for_special_handling(api, "REL-1")
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    page.get_by_role("link", name="REL-1").click()
    expect(page.get_by_text("at delivery.special_handling")).to_be_visible()
    shot(page, "order")
    page.get_by_label("Reason").first.fill("customer confirmed by phone: no special handling")
    page.get_by_role("button", name="Release").click()
    expect(page.get_by_role("status")).to_have_text("Released.")
    expect(page.locator(".state")).to_have_text("Accepted")

    assert get_order(api, held.id, keys.shop).state == order_pb2.ORDER_STATE_ACCEPTED
    [entry] = [
        e for e in audit_entries(api, keys.manager, order_id=held.id) if e.action != "pii.read"
    ]
    assert (entry.actor, entry.role) == ("ana", "manager")
    page.get_by_role("link", name="Audit log", exact=True).click()
    page.get_by_label("Person or client").fill("ana")
    page.get_by_role("button", name="Filter").click()
    expect(page.get_by_role("cell", name=entry.action)).to_be_visible()
    shot(page, "audit-log")


def test_the_held_flow_works_with_the_keyboard_alone(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    first = held_for_special_handling(api, "KEY-1")
    second = held_for_special_handling(api, "KEY-2")
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")

    def tab_to(accessible_name: str) -> None:
        seen: list[str] = []
        for _ in range(60):
            page.keyboard.press("Tab")
            focused = page.evaluate(
                # Nothing focused yet (a Tab pressed while the page was still loading) is the
                # body, whose text names every control on the page: not a match.
                "() => { const e = document.activeElement; if (e === document.body) return '';"
                " return (e.labels && e.labels[0] && e.labels[0].innerText) || e.innerText || '' }"
            )
            focused = " ".join(focused.split())
            seen.append(focused)
            if accessible_name in focused:
                return
        raise AssertionError(f"Tab never reached {accessible_name!r}: {seen}")

    tab_to("Select KEY-1")
    page.keyboard.press("Space")
    tab_to("Select KEY-2")
    page.keyboard.press("Space")
    tab_to("Reason")
    page.keyboard.type("stock confirmed")
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("2 released")
    for order in (first, second):
        assert get_order(api, order.id, keys.shop).state == order_pb2.ORDER_STATE_ACCEPTED


def test_a_correction_through_the_editor_is_checked_then_saved(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    held = api.submit(order_xml("COR-1", [("SKU-1001", "1.5")])).order
    assert held.hold_reasons[0].code == "QUANTITY_INVALID"
    person(db, "omar", Role.OPERATIONS)
    sign_in(page, console, "omar")
    page.goto(f"{console.http}/console/orders/{held.id}")
    page.get_by_role("link", name="Correct the document").click()
    editor = page.get_by_label("Order document (XML)")
    text = editor.input_value()
    assert "<Quantity>1.5</Quantity>" in text
    editor.fill(text.replace("<Quantity>1.5</Quantity>", "<Quantity>0</Quantity>"))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_contain_text("QUANTITY_INVALID")  # still wrong
    assert get_order(api, held.id, keys.shop).state == order_pb2.ORDER_STATE_ON_HOLD
    editor = page.get_by_label("Order document (XML)")
    editor.fill(editor.input_value().replace("<Quantity>0</Quantity>", "<Quantity>2</Quantity>"))
    page.get_by_role("button", name="Check").click()
    expect(page.get_by_role("status")).to_contain_text("The check says: Accepted")
    shot(page, "correct")
    assert get_order(api, held.id, keys.shop).state == order_pb2.ORDER_STATE_ON_HOLD  # only a check
    page.get_by_role("button", name="Save correction").click()
    expect(page.get_by_role("status")).to_have_text("Corrected: Accepted.")
    corrected = api.orders.GetOrder(
        pb.GetOrderRequest(client_order_id="COR-1"), metadata=auth(keys.shop)
    ).order
    assert corrected.state == order_pb2.ORDER_STATE_ACCEPTED
    assert corrected.lines[0].quantity == 2


def test_accept_short_keeps_what_is_in_stock(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    held = api.submit(order_xml("SHORT-1", [("SKU-1001", 1), ("SKU-1002", 100_000)])).order
    assert held.stock_hold
    person(db, "omar", Role.OPERATIONS)
    sign_in(page, console, "omar")
    page.goto(f"{console.http}/console/orders/{held.id}")
    page.get_by_label("Reason").and_(page.locator("#short-reason")).fill(
        "customer takes what is there"
    )
    page.get_by_role("button", name="Accept short").click()
    expect(page.get_by_role("status")).to_have_text("Accepted short.")
    order = get_order(api, held.id, keys.shop)
    assert order.state == order_pb2.ORDER_STATE_ACCEPTED
    assert order.lines[1].cancelled_quantity > 0
    assert order.lines[0].cancelled_quantity == 0


def test_a_manual_order_goes_through_validation_and_names_its_person(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    person(db, "omar", Role.OPERATIONS)
    sign_in(page, console, "omar")
    page.get_by_role("link", name="New order").click()
    page.get_by_label("Client").select_option("shop-a")
    page.get_by_label("Customer account").fill("C-1001")
    page.get_by_label("Order number").fill("PHONE-1")
    page.get_by_label("Product 1 (SKU, alias or barcode)").fill("CUP-SET-6")
    page.get_by_label("Quantity 1").fill("3")
    page.get_by_label("Name").fill("Café Lindner, Goods In")
    page.get_by_label("Street").fill("Lindenstraße 12")
    page.get_by_label("Postal code").fill("20095")
    page.get_by_label("City").fill("Hamburg")
    page.get_by_label("Country (two letters)").fill("DE")
    page.get_by_label("Phone").fill("+49 40 1234567")
    shot(page, "manual-order")
    page.get_by_role("button", name="Enter order").click()
    expect(page.get_by_role("status")).to_have_text("Manual order entered: Accepted.")

    order = api.orders.GetOrder(
        pb.GetOrderRequest(client_order_id="PHONE-1"), metadata=auth(keys.shop)
    ).order
    assert order.state == order_pb2.ORDER_STATE_ACCEPTED
    assert order.source == order_pb2.ORDER_SOURCE_MANUAL
    assert order.entered_by == "omar"
    assert (order.lines[0].sku, order.lines[0].quantity) == ("SKU-1001", 3)

    # Without a phone number it is held for it, like any order without one.
    page.get_by_role("link", name="New order").click()
    page.get_by_label("Client").select_option("shop-a")
    page.get_by_label("Customer account").fill("C-1001")
    page.get_by_label("Order number").fill("PHONE-2")
    page.get_by_label("Product 1 (SKU, alias or barcode)").fill("SKU-1001")
    page.get_by_label("Quantity 1").fill("1")
    page.get_by_role("button", name="Enter order").click()
    expect(page.get_by_role("status")).to_have_text("Manual order entered: On Hold.")
    expect(page.get_by_text("PHONE_MISSING").first).to_be_visible()


def test_the_warehouse_picks_packs_and_dispatches_with_tracking(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    order = api.submit(order_xml("SHIP-1")).order
    person(db, "wes", Role.WAREHOUSE)
    sign_in(page, console, "wes")
    page.goto(f"{console.http}/console/orders/{order.id}")
    assert page.get_by_role("button", name="Release").count() == 0  # not the warehouse's
    for step, state in (("Start picking", "Picking"), ("Picked", "Picked")):
        page.get_by_role("button", name=step).click()
        expect(page.locator(".state")).to_have_text(state)
    page.get_by_label("Reason").and_(page.locator("#unpick-reason")).fill("wrong carton")
    page.get_by_role("button", name="Un-pick").click()
    expect(page.get_by_role("status")).to_have_text("Un-picked: back to accepted.")
    expect(page.locator(".state")).to_have_text("Accepted")
    for step, state in (("Start picking", "Picking"), ("Picked", "Picked"), ("Packed", "Packed")):
        page.get_by_role("button", name=step).click()
        expect(page.locator(".state")).to_have_text(state)
    page.get_by_label("Carrier").fill("DHL")
    page.get_by_label("Tracking number").fill("00340434161094042557")
    page.get_by_role("button", name="Dispatch").click()
    expect(page.locator(".state")).to_have_text("Dispatched")
    expect(page.get_by_role("cell", name="00340434161094042557", exact=True)).to_be_visible()
    shipped = get_order(api, order.id, keys.shop)
    assert shipped.state == order_pb2.ORDER_STATE_DISPATCHED
    assert shipped.shipments[0].tracking_number == "00340434161094042557"


def test_integration_health_shows_intake_holds_and_refusals(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    api.submit(order_xml("IN-1"))
    held_for_special_handling(api, "IN-2")
    with pytest.raises(grpc.RpcError):
        api.submit(order_xml("IN-3"), key="og_nosuchkey_secret")
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    page.get_by_role("link", name="Integration health").click()
    shop_a = page.get_by_role("row", name="shop-a")
    expect(shop_a).to_contain_text("2")  # orders in the last day
    expect(shop_a).to_contain_text("min ago")
    expect(page.get_by_role("row", name="shop-b")).to_contain_text("not among the newest")
    expect(page.get_by_role("link", name="SPECIAL_HANDLING_REQUIRED 1")).to_be_visible()
    expect(page.get_by_role("row", name="unauthenticated API_KEY_INVALID")).to_contain_text("1")
    shot(page, "integration-health")


# --- roles, CSRF, headers ----------------------------------------------------------------------


def test_operations_gets_no_stock_adjustment_and_a_forged_one_is_refused_and_audited(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    person(db, "omar", Role.OPERATIONS)
    sign_in(page, console, "omar")
    page.get_by_role("link", name="Stock").click()
    page.get_by_label("SKU, alias or barcode").fill("4006381333931")  # SKU-1001's barcode
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name="SKU-1001")).to_be_visible()
    before = page.get_by_role("row", name="WH-MAIN").inner_text()
    assert page.get_by_role("button", name="Adjust stock").count() == 0
    assert page.get_by_role("button", name="Record count").count() == 0

    csrf = page.locator("input[name=csrf]").first.input_value()  # the sign-out form's
    forged = page.request.post(
        f"{console.http}/console/stock/adjust",
        form={
            "csrf": csrf,
            "code": "SKU-1001",
            "location": "WH-MAIN",
            "delta": "1000",
            "reason_code": "FOUND",
            "note": "forged",
            "request_id": "00000000-0000-4000-8000-000000000001",
        },
    )
    assert forged.status == 403
    page.reload()
    assert page.get_by_role("row", name="WH-MAIN").inner_text() == before
    [refused] = audit_entries(api, keys.manager, actor="omar", subject="console/stock/adjust")
    assert refused.action == "console.refused"
    assert "AdjustStock" in refused.reason


def test_a_manager_adjusts_and_counts_stock(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    page.goto(f"{console.http}/console/stock?code=SKU-1001")
    page.get_by_label("Location").first.select_option("WH-MAIN")
    page.get_by_label("Change in pieces (+ or -)").fill("-3")
    page.get_by_label("Reason").first.select_option("DAMAGED")
    page.get_by_label("Note").fill("dropped a carton")
    page.get_by_role("button", name="Adjust stock").click()
    expect(page.get_by_role("status")).to_have_text("Stock adjusted.")
    expect(page.get_by_role("row", name="WH-MAIN")).to_contain_text("497")
    shot(page, "stock")
    page.locator("#cnt-location").select_option("WH-MAIN")
    page.get_by_label("Counted pieces").fill("490")
    page.locator("#cnt-reason").fill("cycle count")
    page.get_by_role("button", name="Record count").click()
    expect(page.get_by_role("status")).to_have_text("Count recorded.")
    expect(page.get_by_role("row", name="WH-MAIN")).to_contain_text("490")
    # A return put aside unchecked: into quarantine, on hand (sellable) unchanged.
    page.locator("#adj-location").select_option("WH-MAIN")
    page.locator("#adj-bucket").select_option("QUARANTINE")
    page.get_by_label("Change in pieces (+ or -)").fill("4")
    page.get_by_label("Reason").first.select_option("RETURNED")
    page.get_by_label("Note").fill("parcel without RMA")
    page.get_by_role("button", name="Adjust stock").click()
    expect(page.get_by_role("status")).to_have_text("Stock adjusted.")
    cells = page.get_by_role("row", name="WH-MAIN").get_by_role("cell")
    expect(cells).to_have_text(["WH-MAIN", "490", "0", "490", "4", "0"])
    actions = {e.action for e in audit_entries(api, keys.manager, actor="ana")}
    assert {"stock.adjustment", "stock.count"} <= actions, actions


def test_a_post_without_the_csrf_token_is_refused(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    held = held_for_special_handling(api, "CSRF-1")
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    url = f"{console.http}/console/orders/{held.id}/release"
    assert page.request.post(url, form={"reason": "no token"}).status == 403
    assert page.request.post(url, form={"reason": "bad", "csrf": "guessed"}).status == 403
    # A page on another site posting with the browser's cookie: refused by its Origin as well.
    csrf = page.locator("input[name=csrf]").first.input_value()
    other_site = page.request.post(
        url, form={"reason": "x", "csrf": csrf}, headers={"Origin": "https://evil.example"}
    )
    assert other_site.status == 403
    assert get_order(api, held.id, keys.shop).state == order_pb2.ORDER_STATE_ON_HOLD


def test_hostile_form_values_get_an_answer_and_change_nothing(
    page: Page, console: ServerThread, db: Database, api: Api, keys: Keys
) -> None:
    order = api.submit(order_xml("HOST-1")).order
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    page.goto(f"{console.http}/console/orders/{order.id}")
    csrf = page.locator("input[name=csrf]").first.input_value()

    def post(path: str, **form: str) -> int:
        answer = page.request.post(f"{console.http}{path}", form={"csrf": csrf, **form})
        return answer.status

    base = f"/console/orders/{order.id}"
    for lines in ({"line-1": "1.5"}, {"line-1": "1e400"}, {"line-x": "1"}, {"line-1": "9" * 30}):
        assert post(f"{base}/cancel-lines", reason="hostile", **lines) == 400
    assert post("/console/held/bulk", action="explode") == 400
    page.goto(f"{console.http}/console/held?min_age_hours=nan")
    assert page.locator("h1").inner_text() == "Held orders"
    stock = {"code": "SKU-1001", "location": "WH-MAIN", "request_id": str(uuid.uuid4())}
    assert post("/console/stock/adjust", delta="inf", reason_code="FOUND", note="x", **stock) == 400
    assert post("/console/stock/count", counted="1e30", reason="x", **stock) == 400
    person(db, "wes", Role.WAREHOUSE)
    page.get_by_role("button", name="Sign out").click()
    sign_in(page, console, "wes")
    page.goto(f"{console.http}{base}")
    csrf = page.locator("input[name=csrf]").first.input_value()
    assert post(f"{base}/advance", state="not a state") == 400
    assert post(f"{base}/advance", state="99999999999") == 400
    kept = get_order(api, order.id, keys.shop)
    assert kept.state == order_pb2.ORDER_STATE_ACCEPTED
    assert kept.lines[0].cancelled_quantity == 0


def test_pages_carry_security_headers_and_no_script(
    page: Page, console: ServerThread, db: Database, api: Api
) -> None:
    held = held_for_special_handling(api, "HDR-1")
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    for path in ("/console/held", f"/console/orders/{held.id}", "/console/sign-in"):
        answer = page.request.get(f"{console.http}{path}")
        csp = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in csp
        assert "'unsafe-inline'" not in csp
        assert "script-src" not in csp
        assert "default-src 'none'" in csp
        assert answer.headers["x-frame-options"] == "DENY"
        assert "<script" not in answer.text()


def test_finance_sees_no_personal_data(
    page: Page, console: ServerThread, db: Database, api: Api
) -> None:
    order = api.submit(order_xml("PII-1")).order
    person(db, "fin", Role.FINANCE)
    sign_in(page, console, "fin")
    page.goto(f"{console.http}/console/orders/{order.id}")
    expect(page.get_by_text("not shown to your role")).to_be_visible()
    body = page.content()
    assert "Lindenstraße" not in body
    assert "+49 40 1234567" not in body
    assert "Held orders" not in page.locator("nav").inner_text()  # finance has no queue


def test_every_form_control_has_a_visible_label_at_desktop_and_phone_width(
    page: Page, console: ServerThread, db: Database, api: Api
) -> None:
    held = held_for_special_handling(api, "A11Y-1")
    person(db, "ana", Role.MANAGER)
    sign_in(page, console, "ana")
    pages = (
        "/console/held",
        f"/console/orders/{held.id}",
        f"/console/orders/{held.id}/correct",
        "/console/orders/new",
        "/console/stock?code=SKU-1001",
        "/console/audit",
        "/console/health",
    )
    for width in (1280, 390):
        page.set_viewport_size({"width": width, "height": 900})
        for path in pages:
            page.goto(f"{console.http}{path}")
            unlabelled = page.evaluate(
                """() => [...document.querySelectorAll('input, select, textarea')]
                    .filter(e => e.type !== 'hidden')
                    .filter(e => !(e.labels && [...e.labels].some(l => l.innerText.trim())))
                    .map(e => e.name || e.id)"""
            )
            assert unlabelled == [], (path, unlabelled)
            overflow = page.evaluate(
                "() => document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            assert overflow <= 0, (path, width, overflow)  # tables scroll inside their box
        if width == 390:
            page.goto(f"{console.http}/console/held")
            shot(page, "held-orders-phone")


# --- accounts from the command line --------------------------------------------------------------


def _cli(db: Database, *args: str, stdin: str = "") -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    url = db.engine.url.render_as_string(hide_password=False)
    old_stdin = sys.stdin
    sys.stdin = io.StringIO(stdin)
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = cli.main(["--database-url", url, *args])
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


def test_users_are_made_disabled_and_reset_from_the_command_line(
    page: Page, console: ServerThread, db: Database
) -> None:
    code, out, _ = _cli(
        db, "users", "create", "ana", "--role", "manager", "--password-stdin", stdin=PASSWORD + "\n"
    )
    assert code == 0
    assert out == ""
    code, generated, _ = _cli(db, "users", "create", "wes", "--role", "warehouse")
    assert code == 0
    assert len(generated.strip()) >= 16
    code, _, err = _cli(
        db, "users", "create", "short", "--role", "manager", "--password-stdin", stdin="tiny\n"
    )
    assert code == 2
    assert "password" in err
    code, listing, _ = _cli(db, "users", "list")
    assert "ana\tmanager\tactive" in listing
    assert "wes\twarehouse\tactive" in listing

    sign_in(page, console, "wes", generated.strip())
    expect(page.get_by_text("wes · warehouse")).to_be_visible()
    _cli(db, "users", "disable", "wes", "--reason", "left the company")
    page.goto(f"{console.http}/console/stock")  # the session ended with the account
    expect(page.get_by_label("Password")).to_be_visible()
    sign_in(page, console, "wes", generated.strip())
    expect(page.get_by_role("alert")).to_contain_text("disabled")

    code, new_password, _ = _cli(db, "users", "reset", "ana")
    assert code == 0
    sign_in(page, console, "ana")  # the old password no longer works
    expect(page.get_by_role("alert")).to_have_text("Wrong username or password.")
    sign_in(page, console, "ana", new_password.strip())
    expect(page.get_by_text("ana · manager")).to_be_visible()
