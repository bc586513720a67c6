"""`POST /v1/orders`: an order document as the request body, for the simplest shops.

    curl -X POST http://host:8080/v1/orders -H "Authorization: Bearer $KEY" \\
         -H "Content-Type: application/xml" -H "Idempotency-Key: $ORDER_NUMBER" \\
         --data-binary @order.xml

The same pipeline and decision as SubmitOrder (it is SubmitOrder, through the same call
handling), answered as a REST client expects: 201 Created when accepted, 202 Accepted when held
(the body says why), 200 with `?validate_only=true`; a retry with the same Idempotency-Key gets
the first answer again with `Idempotent-Replayed: true`. Refusals: 401, 403, 409 (the order id
is taken with other content), 413, 415, 422 (a request that cannot be taken as it is), 429 and
503 with Retry-After. The body is the response (or the error) as Connect's JSON, the error's
google.rpc details decoded under `debug`; with `Accept: application/xml`, the answer is the UBL
OrderResponse itself. A buyer's UBL OrderCancellation or OrderChange is answered 200 when carried
out and 409 when refused (the order's state does not allow it; the OrderResponse says why).

Idempotency-Key: a UUID is used as the request_id; any other key (up to 200 characters, such
as the shop's order number) is turned into one with the client, so two clients' keys never
meet. Without the header, the request_id comes from the document's bytes: the same document
posted again is a replay, never a second order.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from typing import Any

from google.protobuf import json_format
from google.rpc import code_pb2, error_details_pb2
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ordergate.v1 import order_pb2
from ordergate.v1 import order_service_pb2 as pb

from ...service.auth import Authenticator
from ...service.errors import ErrorKind, FieldViolation, ServiceError
from ...service.rate_limits import KeyLimits
from .. import calls, errors
from ..interceptors import peer_address
from ..order_servicer import OrderServicer
from ..request_checks import check_request
from .details import decoded

METHOD = "/ordergate.v1.OrderService/SubmitOrder"
XML_TYPES = ("application/xml", "text/xml")
MAX_IDEMPOTENCY_KEY = 200
_NAMESPACE = uuid.UUID("0f5b2a54-43c8-4b1e-9d1a-6c3f0a7e2b91")  # Idempotency-Key -> request_id

# The HTTP status of a refusal, by its kind; a few reasons have a more precise one.
_STATUS = {
    ErrorKind.INVALID_ARGUMENT: 422,
    ErrorKind.FAILED_PRECONDITION: 422,
    ErrorKind.NOT_FOUND: 404,
    ErrorKind.ALREADY_EXISTS: 409,
    ErrorKind.RESOURCE_EXHAUSTED: 429,
    ErrorKind.UNAUTHENTICATED: 401,
    ErrorKind.PERMISSION_DENIED: 403,
    ErrorKind.UNAVAILABLE: 503,
    ErrorKind.UNIMPLEMENTED: 501,
    ErrorKind.INTERNAL: 500,
}
_STATUS_BY_REASON = {"PAYLOAD_TOO_LARGE": 413, "CONTENT_TYPE_UNSUPPORTED": 415}


class OrdersPost:
    """The route's handler: one instance per server process."""

    def __init__(
        self,
        servicer: OrderServicer,
        authenticator: Authenticator,
        limits: KeyLimits,
        in_flight: calls.InFlight,
        outcomes: calls.Outcomes,
        max_order_bytes: int,
    ) -> None:
        self._servicer = servicer
        self._authenticator = authenticator
        self._limits = limits
        self._in_flight = in_flight
        self._outcomes = outcomes
        self._max_bytes = max_order_bytes

    async def handle(self, request: Request) -> Response:
        record = calls.start_call_record(time.perf_counter(), via="http")
        peer = request.client.host if request.client else ""
        holding = False
        try:
            self._in_flight.enter()
            holding = True
            principal = calls.authenticate(
                self._authenticator, request.headers.get("authorization", ""), peer_address_of(peer)
            )
            calls.check_role(principal, METHOD)
            calls.set_principal(principal)
            self._limits.take(principal.key_id)
            submit = await self._request(request, principal.client_id)
            check_request(submit)
            calls.note_request(submit)
            answer = await self._servicer.SubmitOrder(submit, calls.NO_CONTEXT)
            calls.note_response(answer)
            response = _answer(answer, submit.validate_only, submit.ubl_order_response)
            code = "OK"
        except Exception as exc:
            error = calls.as_service_error(exc, METHOD)
            if error is None:
                raise
            response = _refusal(error)
            code = error.kind.value
        finally:
            if holding:
                self._in_flight.leave()
        duration = time.perf_counter() - record.started
        self._outcomes.record(METHOD, code, record, duration, peer)
        return response

    async def _request(self, request: Request, client_id: int) -> pb.SubmitOrderRequest:
        content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
        if content_type not in XML_TYPES:
            raise ServiceError(
                ErrorKind.INVALID_ARGUMENT,
                "CONTENT_TYPE_UNSUPPORTED",
                "Send the order document as Content-Type: application/xml.",
                metadata={"content_type": content_type[:100]},
            )
        body = bytearray()
        async for chunk in request.stream():  # read no further than the limit
            body += chunk
            if len(body) > self._max_bytes:
                raise ServiceError(
                    ErrorKind.RESOURCE_EXHAUSTED,
                    "PAYLOAD_TOO_LARGE",
                    f"The order document is larger than {self._max_bytes:,} bytes.",
                    metadata={"max_bytes": str(self._max_bytes)},
                )
        key = request.headers.get("idempotency-key", "")
        return pb.SubmitOrderRequest(
            request_id=_request_id(key, client_id, bytes(body)),
            order_xml=bytes(body),
            validate_only=request.query_params.get("validate_only", "").lower() == "true",
            ubl_order_response=wants_xml(request),
        )


def peer_address_of(host: str) -> str:
    return peer_address(f"ipv6:[{host}]:0" if ":" in host else f"ipv4:{host}:0")


def _request_id(key: str, client_id: int, body: bytes) -> str:
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "IDEMPOTENCY_KEY_INVALID",
            f"The Idempotency-Key is longer than {MAX_IDEMPOTENCY_KEY} characters.",
            field_violations=[FieldViolation("Idempotency-Key", "at most 200 characters")],
        )
    if key:
        try:
            return str(uuid.UUID(key))
        except ValueError:
            return str(uuid.uuid5(_NAMESPACE, f"{client_id}\n{key}"))
    return str(uuid.uuid5(_NAMESPACE, f"{client_id}\n{hashlib.sha256(body).hexdigest()}"))


def _answer(answer: pb.SubmitOrderResponse, validate_only: bool, as_xml: bool) -> Response:
    if answer.HasField("amendment"):  # a buyer's OrderCancellation or OrderChange
        status = 200 if answer.amendment.accepted else 409  # refused: the order's state
    elif validate_only:
        status = 200
    elif answer.order.state == order_pb2.ORDER_STATE_ACCEPTED:
        status = 201
    else:
        status = 202  # stored, on hold: `order.holdReasons` says why
    headers = {"Idempotent-Replayed": "true"} if answer.replayed else {}
    if as_xml:  # Accept: application/xml: the UBL OrderResponse itself
        return Response(answer.ubl_order_response, status, headers, media_type="application/xml")
    return JSONResponse(json_format.MessageToDict(answer), status, headers)


def wants_xml(request: Request) -> bool:
    """Whether the client asked for the answer as a UBL OrderResponse (Accept: application/xml
    or text/xml, before any JSON)."""
    accepted = [
        part.partition(";")[0].strip() for part in request.headers.get("accept", "").split(",")
    ]
    for media in accepted:
        if media in XML_TYPES:
            return True
        if media in ("application/json", "*/*"):
            return False
    return False


def _refusal(error: ServiceError) -> Response:
    """An error as Connect's JSON has it, with each detail also decoded under `debug`."""
    status = errors.to_status_proto(error)
    details: list[dict[str, Any]] = []
    retry_after = ""
    for packed in status.details:
        name = packed.type_url.rpartition("/")[2]
        details.append(
            {
                "type": name,
                "value": base64.b64encode(packed.value).decode().rstrip("="),
                "debug": decoded(name, packed.value),
            }
        )
        if name == "google.rpc.RetryInfo":
            delay = error_details_pb2.RetryInfo.FromString(packed.value).retry_delay
            retry_after = str(max(1, round(delay.ToTimedelta().total_seconds())))
    body = {
        "code": code_pb2.Code.Name(status.code).lower(),
        "message": status.message,
        "details": details,
    }
    http_status = _STATUS_BY_REASON.get(error.reason, _STATUS[error.kind])
    if error.kind is ErrorKind.UNAVAILABLE and not retry_after:
        retry_after = "1"  # a lost database: soon, with backoff
    headers = {"Retry-After": retry_after} if retry_after else {}
    if error.kind is ErrorKind.UNAUTHENTICATED:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, http_status, headers)
