"""The console's pages and forms (Starlette routes, Jinja2 templates rendered on the server).

Every page and form needs a signed-in person (service/staff.py). What a person may see and do
is what their role may call in the API (permissions.py): each page and each action names the
RPC it is, the page offers only the actions the role allows, and a POST of one it does not
allow is refused with 403 and kept in the audit log. Every POST carries the session's CSRF
token. Pages carry a Content-Security-Policy without inline script (there is no script at all:
plain forms work with a keyboard and without JavaScript).
"""

from __future__ import annotations

import asyncio
import hmac
import math
import os
import secrets
import time
import uuid
from collections import OrderedDict, deque
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from google.protobuf.duration_pb2 import Duration
from google.protobuf.timestamp_pb2 import Timestamp
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ordergate.v1 import (
    audit_service_pb2 as audit_pb,
)
from ordergate.v1 import (
    exception_queue_service_pb2 as queue_pb,
)
from ordergate.v1 import (
    fulfillment_service_pb2 as fulfil_pb,
)
from ordergate.v1 import (
    inventory_service_pb2 as stock_pb,
)
from ordergate.v1 import (
    order_pb2,
)
from ordergate.v1 import (
    order_service_pb2 as order_pb,
)

from ...service import integration_health, monitoring, staff
from ...service.errors import ErrorKind, ServiceError
from ...storage import Database
from ..metrics import Metrics
from ..runner import Runner
from . import order_entry
from .acting import Caller, allowed

HERE = Path(__file__).parent
COOKIE = "ordergate_console"
SIGN_IN_COOKIE = "ordergate_console_sign_in"  # the sign-in form's own CSRF (double submit)
# Sign-in tries from one address per process, in a sliding window, before it must wait.
ADDRESS_TRIES, ADDRESS_WINDOW_SECONDS, MAX_ADDRESSES = 20, 900, 10_000

# A corrected order document is the largest thing a form sends (ORDERGATE_MAX_ORDER_BYTES,
# url-encoded: up to three bytes each).
MAX_FORM_BYTES = 4 * 1024 * 1024

HEADERS = {
    "content-security-policy": (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "cache-control": "no-store",
}

STATUS = {
    ErrorKind.INVALID_ARGUMENT: 400,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.FAILED_PRECONDITION: 409,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.UNAVAILABLE: 503,
}

# Stock adjustment reasons offered (AdjustStockRequest.reason_code).
ADJUST_REASONS = ("DAMAGED", "FOUND", "LOST", "RECEIVED", "RETURNED", "POS_SALE", "OTHER")
# Roles that see buyers' personal data (delivery name, address, phone, e-mail) in the console.
# Finance works with amounts and states, not with where parcels go.
PERSONAL_DATA_ROLES = frozenset({"admin", "manager", "operations", "warehouse"})
# The states an order may be moved on to by the warehouse, in order.
NEXT_STATE = {
    order_pb2.ORDER_STATE_ACCEPTED: (order_pb2.ORDER_STATE_PICKING, "Start picking"),
    order_pb2.ORDER_STATE_PICKING: (order_pb2.ORDER_STATE_PICKED, "Picked"),
    order_pb2.ORDER_STATE_PICKED: (order_pb2.ORDER_STATE_PACKED, "Packed"),
}
# domain/lifecycle.py: un-pick from PICKING or PICKED; a whole order is cancelled while it is
# ON_HOLD or ACCEPTED (lines until it ships); a manual hold from ACCEPTED to PACKED.
UNPICKABLE = {order_pb2.ORDER_STATE_PICKING, order_pb2.ORDER_STATE_PICKED}
CANCELLABLE = {order_pb2.ORDER_STATE_ON_HOLD, order_pb2.ORDER_STATE_ACCEPTED}
HOLDABLE = {*UNPICKABLE, order_pb2.ORDER_STATE_ACCEPTED, order_pb2.ORDER_STATE_PACKED}
LINES_CANCELLABLE = {*HOLDABLE, order_pb2.ORDER_STATE_ON_HOLD}

Handler = Callable[[Request, staff.Session], Awaitable[Response]]


class Console:
    def __init__(
        self,
        db: Database,
        run: Runner,
        caller: Caller,
        *,
        idle: timedelta,
        longest: timedelta,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._db = db
        self._run = run
        self._call = caller
        self._idle = idle
        self._longest = longest
        self._tries: OrderedDict[str, deque[float]] = OrderedDict()
        self._templates = Environment(
            loader=FileSystemLoader(HERE / "templates"),
            autoescape=select_autoescape(["html"]),
            trim_blocks=True,
            lstrip_blocks=True,
            auto_reload=False,  # templates are part of the release: no stat() on every page
        )
        self._templates.globals.update(state_name=_state_name, when=_when, age=_age)

    def app(self) -> Starlette:
        get, post = ["GET"], ["POST"]
        return Starlette(
            routes=[
                Route("/", self._home, methods=get),
                Route("/sign-in", self._sign_in_page, methods=get),
                Route("/sign-in", self._sign_in, methods=post),
                Route("/sign-out", self._page(self._sign_out, post=True), methods=post),
                Route(
                    "/held",
                    self._page(self._held, "ExceptionQueueService/ListHeldOrders"),
                    methods=get,
                ),
                Route("/held/bulk", self._page(self._bulk, post=True), methods=post),
                Route(
                    "/orders", self._page(self._find_order, "OrderService/GetOrder"), methods=get
                ),
                Route(
                    "/orders/new",
                    self._page(self._new_order_page, "OrderService/SubmitOrder"),
                    methods=get,
                ),
                Route(
                    "/orders/new",
                    self._page(self._new_order, "OrderService/SubmitOrder", post=True),
                    methods=post,
                ),
                Route(
                    "/orders/{id}", self._page(self._order, "OrderService/GetOrder"), methods=get
                ),
                Route(
                    "/orders/{id}/document",
                    self._page(self._document, "OrderService/GetOrderDocument"),
                    methods=get,
                ),
                Route(
                    "/orders/{id}/correct",
                    self._page(self._correct_page, "ExceptionQueueService/CorrectOrder"),
                    methods=get,
                ),
                Route(
                    "/orders/{id}/correct",
                    self._page(self._correct, "ExceptionQueueService/CorrectOrder", post=True),
                    methods=post,
                ),
                Route(
                    "/orders/{id}/{action}", self._page(self._order_action, post=True), methods=post
                ),
                Route(
                    "/stock",
                    self._page(self._stock, "InventoryService/GetStockLevels"),
                    methods=get,
                ),
                Route("/stock/{action}", self._page(self._stock_action, post=True), methods=post),
                Route(
                    "/audit", self._page(self._audit, "AuditService/ListAuditEntries"), methods=get
                ),
                Route(
                    "/health",
                    self._page(self._health, "AuditService/ListAuditEntries"),
                    methods=get,
                ),
                Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
            ],
            exception_handlers={404: self._not_found},
        )

    # --- sessions -------------------------------------------------------------------------------

    async def _session(self, request: Request) -> staff.Session | None:
        token = request.cookies.get(COOKIE, "")
        if not token:
            return None
        return await self._run(
            staff.session_for, self._db, token, idle=self._idle, longest=self._longest
        )

    def _page(self, handler: Handler, permission: str = "", *, post: bool = False) -> Any:
        """`handler` for a signed-in person whose role may call `permission` (an RPC); a POST
        must carry the session's CSRF token and come from this origin."""

        async def endpoint(request: Request) -> Response:
            session = await self._session(request)
            if session is None:
                if post:
                    return self._plain(401, "Your session has ended. Sign in again.")
                target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                return RedirectResponse(f"/console/sign-in?next={quote(target)}", 303)
            if post:
                if int(request.headers.get("content-length") or 0) > MAX_FORM_BYTES:
                    return self._plain(413, "That is more than a form of the console sends.")
                form = await request.form()
                request.state.form = form
                if not _same_origin(request) or not hmac.compare_digest(
                    str(form.get("csrf", "")), session.csrf_token
                ):
                    return self._plain(403, "This form is stale or was not sent from the console.")
            if permission and not allowed(session, permission):
                return await self._refuse(request, session, permission)
            return await handler(request, session)

        return endpoint

    async def _refuse(self, request: Request, session: staff.Session, method: str) -> Response:
        subject = f"console{request.url.path.removeprefix('/console')}"
        await self._run(staff.record_refusal, self._db, session.principal, method, subject)
        return self._render(
            request,
            session,
            "message.html",
            status=403,
            title="Not allowed",
            text=f"Your role ({session.role.value}) may not do this. It has been recorded.",
        )

    async def _home(self, request: Request) -> Response:
        session = await self._session(request)
        if session is None:
            return RedirectResponse("/console/sign-in", 303)
        for method, path in (
            ("ExceptionQueueService/ListHeldOrders", "/console/held"),
            ("InventoryService/GetStockLevels", "/console/stock"),
        ):
            if allowed(session, method):
                return RedirectResponse(path, 303)
        return RedirectResponse("/console/orders", 303)

    async def _sign_in_page(self, request: Request, error: str = "", status: int = 200) -> Response:
        nonce = secrets.token_urlsafe(24)
        response = self._render(
            request,
            None,
            "sign_in.html",
            status=status,
            title="Sign in",
            nonce=nonce,
            refusal=error,
            next=_local(request.query_params.get("next", "")),
        )
        _set_cookie(request, response, SIGN_IN_COOKIE, nonce, max_age=3600)
        return response

    async def _sign_in(self, request: Request) -> Response:
        form = await request.form()
        nonce = request.cookies.get(SIGN_IN_COOKIE, "")
        if (
            not nonce
            or not _same_origin(request)
            or not hmac.compare_digest(str(form.get("nonce", "")), nonce)
        ):
            return await self._sign_in_page(request, "The form was stale: try again.", 403)
        peer = request.client.host if request.client else ""
        if not self._may_try(peer):
            return await self._sign_in_page(
                request, "Too many sign-in attempts from your address: wait a few minutes.", 429
            )
        try:
            # argon2 on a thread of its own: slow on purpose, and off the event loop.
            token, _ = await asyncio.to_thread(
                staff.sign_in,
                self._db,
                str(form.get("username", "")).strip(),
                str(form.get("password", "")),
                peer,
            )
        except staff.SignInRefused as refused:
            self._failed_try(peer)
            return await self._sign_in_page(request, refused.message, 401)
        response = RedirectResponse(_local(str(form.get("next", ""))) or "/console/", 303)
        _set_cookie(request, response, COOKIE, token, max_age=None)
        response.delete_cookie(SIGN_IN_COOKIE, path="/console")
        return response

    def _may_try(self, peer: str) -> bool:
        tries = self._tries.get(peer)
        if tries is None:
            return True
        cutoff = time.monotonic() - ADDRESS_WINDOW_SECONDS
        while tries and tries[0] < cutoff:
            tries.popleft()
        return len(tries) < ADDRESS_TRIES

    def _failed_try(self, peer: str) -> None:
        tries = self._tries.setdefault(peer, deque())
        self._tries.move_to_end(peer)
        tries.append(time.monotonic())
        while len(self._tries) > MAX_ADDRESSES:
            self._tries.popitem(last=False)

    async def _sign_out(self, request: Request, session: staff.Session) -> Response:
        await self._run(staff.sign_out, self._db, request.cookies.get(COOKIE, ""), session.username)
        response = RedirectResponse("/console/sign-in", 303)
        response.delete_cookie(COOKIE, path="/console")
        return response

    # --- held orders -----------------------------------------------------------------------------

    async def _held(self, request: Request, session: staff.Session) -> Response:
        q = request.query_params
        filters = {
            "reason": q.get("reason", ""),
            "client": q.get("client", ""),
            "customer": q.get("customer", ""),
            "min_age_hours": q.get("min_age_hours", ""),
        }
        request_ = queue_pb.ListHeldOrdersRequest(
            reason_code=filters["reason"],
            client=filters["client"],
            customer_account=filters["customer"],
            page_size=100,
            page_token=q.get("page", ""),
        )
        error = None
        hours = _number(filters["min_age_hours"])
        if hours:
            request_.min_age.CopyFrom(Duration(seconds=int(hours * 3600)))
        orders: list[Any] = []
        next_page = ""
        try:
            answer = await self._call(
                session, "ExceptionQueueService/ListHeldOrders", request_, _peer(request)
            )
            orders, next_page = list(answer.orders), answer.next_page_token
        except ServiceError as refused:
            error = refused
        counts = await self._run(monitoring.held_reason_counts, self._db)
        clients = await self._run(integration_health.website_clients, self._db)
        return self._render(
            request,
            session,
            "held.html",
            status=_status(error),
            title="Held orders",
            orders=orders,
            next_page=next_page,
            filters=filters,
            counts=sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])),
            clients=clients,
            error=error,
            message=request.query_params.get("done", ""),
            can_release=allowed(session, "ExceptionQueueService/ReleaseOrder"),
            can_cancel=allowed(session, "OrderService/CancelOrder"),
        )

    async def _bulk(self, request: Request, session: staff.Session) -> Response:
        form: FormData = request.state.form
        action = str(form.get("action", ""))
        method = {
            "release": "ExceptionQueueService/ReleaseOrder",
            "cancel": "OrderService/CancelOrder",
        }.get(action)
        if method is None:
            return self._plain(400, "Choose release or cancel.")
        if not allowed(session, method):
            return await self._refuse(request, session, method)
        reason = str(form.get("reason", "")).strip()
        ids = [str(i) for i in form.getlist("id")][:100]
        if not ids or not reason:
            return self._plain(400, "Select at least one order and give a reason.")
        done, failed = [], []
        for order_id in ids:
            request_: Any = (
                queue_pb.ReleaseOrderRequest(id=order_id, reason=reason)
                if action == "release"
                else order_pb.CancelOrderRequest(id=order_id, reason=reason)
            )
            try:
                await self._call(session, method, request_, _peer(request))
                done.append(order_id)
            except ServiceError as refused:
                failed.append((order_id, refused))
        verb = "released" if action == "release" else "cancelled"
        return self._render(
            request,
            session,
            "bulk_result.html",
            title=f"Orders {verb}",
            verb=verb,
            done=done,
            failed=failed,
        )

    # --- one order -------------------------------------------------------------------------------

    async def _find_order(self, request: Request, session: staff.Session) -> Response:
        number = request.query_params.get("number", "").strip()
        if not number:
            return self._render(request, session, "find_order.html", title="Find an order")
        by_number = order_pb.GetOrderRequest(client_order_id=number)
        for lookup in (order_pb.GetOrderRequest(id=number), by_number):
            try:
                found = await self._call(session, "OrderService/GetOrder", lookup, _peer(request))
            except ServiceError as refused:
                if refused.kind is not ErrorKind.NOT_FOUND and refused.kind is not (
                    ErrorKind.INVALID_ARGUMENT
                ):
                    return self._render(
                        request,
                        session,
                        "find_order.html",
                        status=_status(refused),
                        title="Find an order",
                        error=refused,
                        number=number,
                    )
                continue
            return RedirectResponse(f"/console/orders/{quote(found.order.id)}", 303)
        return self._render(
            request,
            session,
            "find_order.html",
            status=404,
            title="Find an order",
            number=number,
            text=f"No order {number!r}: neither an order id nor a shop's number.",
        )

    async def _order(
        self,
        request: Request,
        session: staff.Session,
        *,
        error: ServiceError | None = None,
        message: str = "",
    ) -> Response:
        order_id = request.path_params["id"]
        try:
            answer = await self._call(
                session,
                "OrderService/GetOrder",
                order_pb.GetOrderRequest(id=order_id),
                _peer(request),
            )
        except ServiceError as refused:
            return self._render(
                request,
                session,
                "message.html",
                status=_status(refused),
                title="Order",
                error=refused,
            )
        order = answer.order
        document = None
        if allowed(session, "OrderService/GetOrderDocument"):
            try:
                document = await self._call(
                    session,
                    "OrderService/GetOrderDocument",
                    order_pb.GetOrderDocumentRequest(id=order_id),
                    _peer(request),
                )
            except ServiceError:
                document = None  # a problem submission's bytes may be all there is; shown if so
        return self._render(
            request,
            session,
            "order.html",
            status=_status(error),
            title=f"Order {order.client_order_id or order.id}",
            order=order,
            document=document,
            document_text=_text(document.document) if document else "",
            personal=session.role.value in PERSONAL_DATA_ROLES,
            actions=self._order_actions(session, order),
            next_state=NEXT_STATE.get(order.state),
            error=error,
            message=message or request.query_params.get("done", ""),
            reasons_at=_reasons_at(order),
        )

    def _order_actions(self, session: staff.Session, order: Any) -> set[str]:
        """The actions the page offers: those the role may take that the order's state admits
        (the API decides in the end: a form posted anyway gets its answer)."""
        state, held = order.state, order.state == order_pb2.ORDER_STATE_ON_HOLD
        manual_hold = held and order.held_from != order_pb2.ORDER_STATE_UNSPECIFIED
        offered = {
            "release": held,
            "correct": held and not manual_hold,
            "recheck": held and not manual_hold,
            "accept-short": held and order.stock_hold,
            "hold": state in HOLDABLE,
            "cancel": state in CANCELLABLE,
            "cancel-lines": state in LINES_CANCELLABLE,
            "advance": state in NEXT_STATE,
            "unpick": state in UNPICKABLE,
            "dispatch": state == order_pb2.ORDER_STATE_PACKED,
        }
        return {a for a, ok in offered.items() if ok and allowed(session, ORDER_ACTIONS[a])}

    async def _document(self, request: Request, session: staff.Session) -> Response:
        order_id = request.path_params["id"]
        try:
            found = await self._call(
                session,
                "OrderService/GetOrderDocument",
                order_pb.GetOrderDocumentRequest(id=order_id),
                _peer(request),
            )
        except ServiceError as refused:
            return self._render(
                request,
                session,
                "message.html",
                status=_status(refused),
                title="Document",
                error=refused,
            )
        name = "".join(c if c.isalnum() or c in "-_." else "_" for c in order_id)
        return Response(
            found.document,
            media_type="application/xml",
            headers={**HEADERS, "content-disposition": f'attachment; filename="{name}.xml"'},
        )

    async def _order_action(self, request: Request, session: staff.Session) -> Response:
        action = request.path_params["action"]
        method = ORDER_ACTIONS.get(action)
        if method is None or action == "correct":
            return self._plain(404, "No such action.")
        if not allowed(session, method):
            return await self._refuse(request, session, method)
        form: FormData = request.state.form
        order_id = request.path_params["id"]
        reason = str(form.get("reason", "")).strip()
        request_: Any
        if action == "release":
            request_ = queue_pb.ReleaseOrderRequest(id=order_id, reason=reason)
        elif action == "hold":
            request_ = queue_pb.HoldOrderRequest(id=order_id, reason=reason)
        elif action == "recheck":
            request_ = queue_pb.RecheckOrdersRequest(id=order_id)
        elif action == "accept-short":
            request_ = queue_pb.AcceptShortRequest(id=order_id, reason=reason)
        elif action == "cancel":
            request_ = order_pb.CancelOrderRequest(id=order_id, reason=reason)
        elif action == "cancel-lines":
            lines = []
            for key, value in form.multi_items():
                if key.startswith("line-") and str(value).strip() not in ("", "0"):
                    lines.append(
                        order_pb2.LineQuantity(
                            line_number=_whole(key.removeprefix("line-"), -1, INT32),
                            quantity=_whole(str(value), -1),
                        )
                    )
            request_ = order_pb.CancelOrderLinesRequest(id=order_id, lines=lines, reason=reason)
        elif action == "advance":
            state = _whole(str(form.get("state", "")), -1, INT32)  # an undefined state is refused
            request_ = fulfil_pb.TransitionOrderRequest(id=order_id, state=state)  # type: ignore[arg-type]
        elif action == "unpick":
            request_ = fulfil_pb.TransitionOrderRequest(
                id=order_id, state=order_pb2.ORDER_STATE_ACCEPTED, note=reason
            )
        else:  # dispatch
            request_ = fulfil_pb.TransitionOrderRequest(
                id=order_id,
                state=order_pb2.ORDER_STATE_DISPATCHED,
                carrier=str(form.get("carrier", "")).strip(),
                tracking_number=str(form.get("tracking_number", "")).strip(),
            )
        try:
            answer = await self._call(session, method, request_, _peer(request))
        except ServiceError as refused:
            return await self._order(request, session, error=refused)
        done = DONE[action]
        if action == "recheck":
            done = "Accepted now." if answer.accepted_order_ids else "Re-checked: still held."
        return RedirectResponse(f"/console/orders/{quote(order_id)}?done={quote(done)}", 303)

    async def _correct_page(
        self,
        request: Request,
        session: staff.Session,
        *,
        text: str | None = None,
        check: Any = None,
        error: ServiceError | None = None,
    ) -> Response:
        order_id = request.path_params["id"]
        try:
            order = (
                await self._call(
                    session,
                    "OrderService/GetOrder",
                    order_pb.GetOrderRequest(id=order_id),
                    _peer(request),
                )
            ).order
            if text is None:
                found = await self._call(
                    session,
                    "OrderService/GetOrderDocument",
                    order_pb.GetOrderDocumentRequest(id=order_id),
                    _peer(request),
                )
                text = _text(found.document)
        except ServiceError as refused:
            return self._render(
                request,
                session,
                "message.html",
                status=_status(refused),
                title="Correct",
                error=refused,
            )
        return self._render(
            request,
            session,
            "correct.html",
            status=_status(error),
            title=f"Correct order {order.client_order_id or order.id}",
            order=order,
            text=text,
            check=check,
            error=error,
            request_id=str(uuid.uuid4()),
        )

    async def _correct(self, request: Request, session: staff.Session) -> Response:
        form: FormData = request.state.form
        order_id = request.path_params["id"]
        text = str(form.get("document", ""))
        payload = text.encode()
        if form.get("check"):
            # What the corrected document would get, without storing it: SubmitOrder's
            # validate_only, for the order's client, judged as the correction would be.
            try:
                order = (
                    await self._call(
                        session,
                        "OrderService/GetOrder",
                        order_pb.GetOrderRequest(id=order_id),
                        _peer(request),
                    )
                ).order
                checked = await self._call(
                    session,
                    "OrderService/SubmitOrder",
                    order_pb.SubmitOrderRequest(
                        request_id=str(uuid.uuid4()),
                        order_xml=payload,
                        validate_only=True,
                        on_behalf_of_client=order.client,
                    ),
                    _peer(request),
                )
            except ServiceError as refused:
                return await self._correct_page(request, session, text=text, error=refused)
            return await self._correct_page(request, session, text=text, check=checked.order)
        try:
            answer = await self._call(
                session,
                "ExceptionQueueService/CorrectOrder",
                queue_pb.CorrectOrderRequest(
                    id=order_id, order_xml=payload, request_id=str(form.get("request_id", ""))
                ),
                _peer(request),
            )
        except ServiceError as refused:
            return await self._correct_page(request, session, text=text, error=refused)
        result = answer.result.order
        done = f"Corrected: {_state_name(result.state)}."
        return RedirectResponse(f"/console/orders/{quote(result.id)}?done={quote(done)}", 303)

    # --- manual orders ---------------------------------------------------------------------------

    async def _new_order_page(
        self,
        request: Request,
        session: staff.Session,
        *,
        entered: order_entry.ManualOrder | None = None,
        error: ServiceError | None = None,
        request_id: str = "",
    ) -> Response:
        clients = await self._run(integration_health.website_clients, self._db)
        stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M")
        return self._render(
            request,
            session,
            "new_order.html",
            status=_status(error),
            title="New manual order",
            clients=clients,
            entered=entered
            or order_entry.ManualOrder(f"MAN-{stamp}-{secrets.token_hex(2).upper()}", ""),
            client=request.query_params.get("client", ""),
            rows=range(1, 6),
            error=error,
            request_id=request_id or str(uuid.uuid4()),
        )

    async def _new_order(self, request: Request, session: staff.Session) -> Response:
        form: FormData = request.state.form
        fields = {k: str(v) for k, v in form.items()}
        entered = order_entry.from_form(fields)
        try:
            answer = await self._call(
                session,
                "OrderService/SubmitOrder",
                order_pb.SubmitOrderRequest(
                    request_id=fields.get("request_id", ""),
                    order_xml=order_entry.document(entered),
                    on_behalf_of_client=fields.get("client", ""),
                ),
                _peer(request),
            )
        except ServiceError as refused:
            return await self._new_order_page(
                request,
                session,
                entered=entered,
                error=refused,
                request_id=fields.get("request_id", ""),
            )
        order = answer.order
        done = f"Manual order entered: {_state_name(order.state)}."
        return RedirectResponse(f"/console/orders/{quote(order.id)}?done={quote(done)}", 303)

    # --- stock -----------------------------------------------------------------------------------

    async def _stock(
        self,
        request: Request,
        session: staff.Session,
        *,
        code: str | None = None,
        error: ServiceError | None = None,
        message: str = "",
    ) -> Response:
        code = request.query_params.get("code", "").strip() if code is None else code
        item = None
        if code and error is None:
            try:
                answer = await self._call(
                    session,
                    "InventoryService/GetStockLevels",
                    stock_pb.GetStockLevelsRequest(codes=[code]),
                    _peer(request),
                )
                item = answer.items[0]
            except ServiceError as refused:
                error = refused
        return self._render(
            request,
            session,
            "stock.html",
            status=_status(error),
            title="Stock",
            code=code,
            item=item,
            error=error,
            message=message or request.query_params.get("done", ""),
            can_adjust=allowed(session, "InventoryService/AdjustStock"),
            can_count=allowed(session, "InventoryService/RecordStockCount"),
            reasons=ADJUST_REASONS,
            request_id=str(uuid.uuid4()),
        )

    async def _stock_action(self, request: Request, session: staff.Session) -> Response:
        action = request.path_params["action"]
        method = {
            "adjust": "InventoryService/AdjustStock",
            "count": "InventoryService/RecordStockCount",
        }.get(action)
        if method is None:
            return self._plain(404, "No such action.")
        if not allowed(session, method):
            return await self._refuse(request, session, method)
        form: FormData = request.state.form
        code = str(form.get("code", "")).strip()
        location = str(form.get("location", "")).strip()
        request_id = str(form.get("request_id", ""))
        request_: Any
        if action == "adjust":
            request_ = stock_pb.AdjustStockRequest(
                request_id=request_id,
                code=code,
                location_code=location,
                delta=_whole(str(form.get("delta", "")), 0),  # 0: refused as no change
                reason_code=str(form.get("reason_code", "")),
                note=str(form.get("note", "")).strip(),
                bucket=_bucket(form),
            )
        else:
            request_ = stock_pb.RecordStockCountRequest(
                request_id=request_id,
                code=code,
                location_code=location,
                counted=_whole(str(form.get("counted", "")), -1),  # -1: refused as negative
                reason=str(form.get("reason", "")).strip(),
                bucket=_bucket(form),
            )
        try:
            await self._call(session, method, request_, _peer(request))
        except ServiceError as refused:
            return await self._stock(request, session, code=code, error=refused)
        done = "Stock adjusted." if action == "adjust" else "Count recorded."
        return RedirectResponse(f"/console/stock?code={quote(code)}&done={quote(done)}", 303)

    # --- audit and health ------------------------------------------------------------------------

    async def _audit(self, request: Request, session: staff.Session) -> Response:
        q = request.query_params
        filters = {
            "person": q.get("person", "").strip(),
            "action": q.get("action", "").strip(),
            "order": q.get("order", "").strip(),
            "start": q.get("start", ""),
            "end": q.get("end", ""),
        }
        start = _datetime(filters["start"]) or datetime.now(UTC) - timedelta(days=1)
        request_ = audit_pb.ListAuditEntriesRequest(
            actor=filters["person"],
            order_id=filters["order"],
            page_size=500,
            page_token=q.get("page", ""),
        )
        request_.start_time.CopyFrom(_timestamp(start))
        if end := _datetime(filters["end"]):
            request_.end_time.CopyFrom(_timestamp(end))
        entries: list[Any] = []
        next_page, error = "", None
        try:
            answer = await self._call(
                session, "AuditService/ListAuditEntries", request_, _peer(request)
            )
            entries, next_page = list(answer.entries), answer.next_page_token
        except ServiceError as refused:
            error = refused
        if filters["action"]:  # the API filters by actor, order and time; the action here
            entries = [e for e in entries if e.action.startswith(filters["action"])]
        return self._render(
            request,
            session,
            "audit.html",
            status=_status(error),
            title="Audit log",
            entries=entries,
            filters=filters,
            start=start,
            next_page=next_page,
            error=error,
        )

    async def _health(self, request: Request, session: staff.Session) -> Response:
        health = await self._run(integration_health.integration_health, self._db)
        rejected: list[tuple[str, str, int]] = []
        set_aside = 0
        if self._metrics is not None:  # this worker's counters: the metrics are per process
            rejected = sorted(
                (
                    (sample.labels["client"], sample.labels["reason"], int(sample.value))
                    for metric in self._metrics.rejected.collect()
                    for sample in metric.samples
                    if sample.name.endswith("_total")
                ),
                key=lambda row: (-row[2], row[0], row[1]),
            )[:50]
            set_aside = sum(
                int(sample.value)
                for metric in self._metrics.file_drop_files.collect()
                for sample in metric.samples
                if sample.name.endswith("_total") and sample.labels["outcome"] == "problem"
            )
        return self._render(
            request,
            session,
            "health.html",
            title="Integration health",
            health=health,
            now=datetime.now(UTC),
            recent=f"{integration_health.RECENT_ORDERS:,}",
            rejected=rejected,
            set_aside=set_aside,
            pid=os.getpid(),
        )

    # --- rendering -------------------------------------------------------------------------------

    def _render(
        self,
        request: Request,
        session: staff.Session | None,
        template: str,
        *,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        nav = []
        if session is not None:
            nav = [(path, label) for path, label, method in NAV if allowed(session, method)]
        html = self._templates.get_template(template).render(
            session=session, nav=nav, path=request.url.path, **context
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    def _plain(self, status: int, text: str) -> HTMLResponse:
        html = self._templates.get_template("message.html").render(
            session=None, nav=[], title="Refused", text=text
        )
        return HTMLResponse(html, status_code=status, headers=HEADERS)

    async def _not_found(self, request: Request, exc: Exception) -> Response:
        return self._plain(404, "No such page.")


ORDER_ACTIONS = {
    "release": "ExceptionQueueService/ReleaseOrder",
    "hold": "ExceptionQueueService/HoldOrder",
    "recheck": "ExceptionQueueService/RecheckOrders",
    "accept-short": "ExceptionQueueService/AcceptShort",
    "correct": "ExceptionQueueService/CorrectOrder",
    "cancel": "OrderService/CancelOrder",
    "cancel-lines": "OrderService/CancelOrderLines",
    "advance": "FulfillmentService/TransitionOrder",
    "unpick": "FulfillmentService/TransitionOrder",
    "dispatch": "FulfillmentService/TransitionOrder",
}
DONE = {
    "release": "Released.",
    "hold": "Put on hold.",
    "accept-short": "Accepted short.",
    "cancel": "Cancelled.",
    "cancel-lines": "Lines cancelled.",
    "advance": "Moved on.",
    "unpick": "Un-picked: back to accepted.",
    "dispatch": "Dispatched.",
}
NAV = (
    ("/console/held", "Held orders", "ExceptionQueueService/ListHeldOrders"),
    ("/console/orders", "Find an order", "OrderService/GetOrder"),
    ("/console/orders/new", "New order", "OrderService/SubmitOrder"),
    ("/console/stock", "Stock", "InventoryService/GetStockLevels"),
    ("/console/audit", "Audit log", "AuditService/ListAuditEntries"),
    ("/console/health", "Integration health", "AuditService/ListAuditEntries"),
)


def _set_cookie(
    request: Request, response: Response, name: str, value: str, *, max_age: int | None
) -> None:
    # Secure always: browsers keep it over https, and over plain http only on this machine
    # (localhost and 127.0.0.1 are secure origins to them), which is the only place the console
    # should be served without TLS (docs/console.md).
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path="/console",
        secure=True,
        httponly=True,
        samesite="strict",
    )


def _same_origin(request: Request) -> bool:
    """A browser names the page a form came from (Origin); one from another site is refused
    even before its CSRF token is checked. Clients that send no Origin rely on the token."""
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return urlsplit(origin).netloc == request.headers.get("host", "")


def _local(target: str) -> str:
    """Where to go after sign-in: a console path only (no open redirect)."""
    return target if target.startswith("/console/") and "//" not in target else ""


def _peer(request: Request) -> str:
    return f"{request.client.host}:{request.client.port}" if request.client else ""


def _status(error: ServiceError | None) -> int:
    return 200 if error is None else STATUS.get(error.kind, 500)


def _number(text: str) -> float | None:
    """A finite number, or None (not "nan" or "inf")."""
    try:
        value = float(text.strip())
    except ValueError:
        return None
    return value if math.isfinite(value) else None


INT32, INT64 = 2**31 - 1, 2**63 - 1


def _bucket(form: FormData) -> stock_pb.StockBucket.ValueType:
    """The form's bucket; anything but QUARANTINE is the sellable stock."""
    if str(form.get("bucket", "")) == "QUARANTINE":
        return stock_pb.STOCK_BUCKET_QUARANTINE
    return stock_pb.STOCK_BUCKET_SELLABLE


def _whole(text: str, invalid: int, bound: int = INT64) -> int:
    """A whole number within ±bound as typed, else `invalid`: a value the API refuses with its
    own reason (a form field is not trusted to be what its input type says)."""
    try:
        value = int(text.strip())
    except ValueError:
        return invalid
    return value if -bound <= value <= bound else invalid


def _text(document: bytes) -> str:
    return document.decode("utf-8", errors="replace")


def _datetime(text: str) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _timestamp(value: datetime) -> Timestamp:
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _state_name(state: Any) -> str:
    name: str = order_pb2.OrderState.Name(state)
    return name.removeprefix("ORDER_STATE_").replace("_", " ").title()


def _when(stamp: Any) -> str:
    if stamp is None or not stamp.seconds:
        return ""
    moment: datetime = stamp.ToDatetime(tzinfo=UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")


def _age(stamp: Any, now: datetime | None = None) -> str:
    if stamp is None:
        return ""
    moment = stamp if isinstance(stamp, datetime) else stamp.ToDatetime(tzinfo=UTC)
    seconds = ((now or datetime.now(UTC)) - moment).total_seconds()
    if seconds < 3600:
        return f"{int(seconds // 60)} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} d"


def _reasons_at(order: Any) -> Callable[[str], list[Any]]:
    """The hold reasons concerning a field (delivery.phone) or anything under it (lines[0])."""

    def at(path: str) -> list[Any]:
        return [
            r
            for r in order.hold_reasons
            if r.field == path or r.field.startswith((f"{path}.", f"{path}["))
        ]

    return at
