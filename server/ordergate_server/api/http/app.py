"""The HTTP listener's application: Connect and gRPC-Web for every service, `POST /v1/orders`,
and CORS for browsers on other origins (ORDERGATE_HTTP_CORS_ORIGINS).

Each service's Connect application (generated, connect/) answers under its own path prefix
(`/ordergate.v1.OrderService/...`); the rest goes to a small Starlette application.
"""

from __future__ import annotations

import base64
import json
from collections.abc import MutableMapping, Sequence
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from .codecs import CODECS
from .connect import (
    audit_service_connect,
    catalog_service_connect,
    exception_queue_service_connect,
    fulfillment_service_connect,
    inbound_service_connect,
    inventory_service_connect,
    order_service_connect,
    pricing_service_connect,
    return_service_connect,
    webhook_service_connect,
)
from .connect_calls import connect_service
from .details import decoded
from .orders_post import OrdersPost

# The generated application class of each service, by the service's full name.
_APPLICATIONS: dict[str, Any] = {
    "ordergate.v1.OrderService": order_service_connect.OrderServiceASGIApplication,
    "ordergate.v1.InventoryService": inventory_service_connect.InventoryServiceASGIApplication,
    "ordergate.v1.CatalogService": catalog_service_connect.CatalogServiceASGIApplication,
    "ordergate.v1.PricingService": pricing_service_connect.PricingServiceASGIApplication,
    "ordergate.v1.FulfillmentService": (
        fulfillment_service_connect.FulfillmentServiceASGIApplication
    ),
    "ordergate.v1.ExceptionQueueService": (
        exception_queue_service_connect.ExceptionQueueServiceASGIApplication
    ),
    "ordergate.v1.AuditService": audit_service_connect.AuditServiceASGIApplication,
    "ordergate.v1.WebhookService": webhook_service_connect.WebhookServiceASGIApplication,
    "ordergate.v1.InboundService": inbound_service_connect.InboundServiceASGIApplication,
    "ordergate.v1.ReturnService": return_service_connect.ReturnServiceASGIApplication,
}

# What a browser on another origin may send and read (Connect, gRPC-Web, the XML POST).
_CORS_HEADERS = [
    "authorization",
    "content-type",
    "connect-protocol-version",
    "connect-timeout-ms",
    "grpc-timeout",
    "idempotency-key",
    "x-grpc-web",
    "x-user-agent",
]
_CORS_EXPOSED = ["grpc-status", "grpc-message", "grpc-status-details-bin", "idempotent-replayed"]


def with_readable_details(send: Send) -> Send:
    """`send`, adding to a Connect JSON error's google.rpc details their decoded form (`debug`,
    which the Connect protocol provides for): connectrpc sends only their bytes, and a client
    without the protos (curl, a PHP shop) could not read the ErrorInfo's reason or the
    BadRequest's fields. Errors are small (api/errors.py bounds them), so the body is held
    until it is complete."""
    start: MutableMapping[str, Any] | None = None
    body = b""

    async def sending(message: MutableMapping[str, Any]) -> None:
        nonlocal start, body
        if message["type"] == "http.response.start":
            content_type = dict(message.get("headers", [])).get(b"content-type")
            if message["status"] >= 400 and content_type == b"application/json":
                start = message  # an error's JSON: held until its body is complete
                return
        elif message["type"] == "http.response.body" and start is not None:
            body += message.get("body", b"")
            if message.get("more_body"):
                return
            body = _with_debug(body)
            headers = [(k, v) for k, v in start["headers"] if k != b"content-length"]
            headers.append((b"content-length", str(len(body)).encode()))
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            start = None
            return
        await send(message)

    return sending


def _with_debug(body: bytes) -> bytes:
    try:
        error = json.loads(body)
        for detail in error.get("details", []):
            if "debug" in detail:
                continue
            value = detail["value"]
            raw = base64.b64decode(value + "=" * (-len(value) % 4))  # Connect's is unpadded
            if (readable := decoded(detail["type"], raw)) is not None:
                detail["debug"] = readable
    except (ValueError, KeyError, TypeError, AttributeError):
        return body  # not an error of ours: as it was
    return json.dumps(error).encode()


def build_app(
    servicers: dict[str, tuple[object, Any]],
    interceptors: Sequence[object],
    orders_post: OrdersPost,
    *,
    read_max_bytes: int,
    cors_origins: Sequence[str] = (),
    console: ASGIApp | None = None,
) -> ASGIApp:
    """`servicers`: service full name -> (its gRPC servicer, its service descriptor);
    `console`: the operations console's application (api/console/), served under /console/."""
    by_prefix: dict[str, ASGIApp] = {}
    for name, (servicer, descriptor) in servicers.items():
        application = _APPLICATIONS[name](
            connect_service(servicer, descriptor),
            interceptors=interceptors,
            read_max_bytes=read_max_bytes,
            codecs=CODECS,
        )
        by_prefix[f"/{name}"] = application
    routes: list[BaseRoute] = [Route("/v1/orders", orders_post.handle, methods=["POST"])]
    if console is not None:

        async def to_console(request: object) -> RedirectResponse:
            return RedirectResponse("/console/", 308)

        routes += [Route("/console", to_console), Mount("/console", console)]
    rest = Starlette(routes=routes)

    async def dispatch(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            prefix = "/" + scope["path"].split("/", 2)[1]
            connect = by_prefix.get(prefix)
            if connect is not None:
                await connect(scope, receive, with_readable_details(send))
                return
        await rest(scope, receive, send)

    if not cors_origins:
        return dispatch
    return CORSMiddleware(
        dispatch,
        allow_origins=list(cors_origins),
        allow_methods=["GET", "POST"],
        allow_headers=_CORS_HEADERS,
        expose_headers=_CORS_EXPOSED,
        max_age=3600,
    )
