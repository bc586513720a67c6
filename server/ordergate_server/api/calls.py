"""What every call of the API goes through, whichever transport carries it.

gRPC (interceptors.py, outcomes.py) and HTTP (http/) are thin adapters around these pieces, so
a call is authenticated, checked against its role and the caller's limits, counted, logged and
refused in one way whether it came as gRPC, Connect, gRPC-Web or a plain XML POST:

- the caller: `authenticate` (an `Authorization: Bearer` header to a Principal), `check_role`
  (permissions.py), then `current_principal()` for the servicer;
- the process's cap on calls at once: `InFlight` (SERVER_BUSY past it);
- the call's record (client, request_id, order id, refusal reason) that each layer fills in as it
  learns it, and `record_outcome`, which counts the call, writes its access-log line and marks
  its trace span;
- `as_service_error`: any exception as the ServiceError its caller is answered with.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import grpc
from opentelemetry import trace
from prometheus_client import Gauge
from sqlalchemy.exc import OperationalError

from ..domain.access import Principal
from ..observability import log_access
from ..service.auth import Authenticator
from ..service.errors import ErrorKind, ServiceError
from . import permissions
from .metrics import Metrics

log = logging.getLogger(__name__)

# --- the caller ----------------------------------------------------------------------------

_principal: contextvars.ContextVar[Principal] = contextvars.ContextVar("principal")


def current_principal() -> Principal:
    """The authenticated caller of the call being served (set once it is authenticated)."""
    return _principal.get()


def set_principal(principal: Principal) -> None:
    _principal.set(principal)


@contextlib.contextmanager
def calling_as(principal: Principal) -> Iterator[None]:
    """Servicer code run as `principal` outside a call: servicer-level tests call the
    servicers' methods in-process (grpcio-testing cannot: it drives only synchronous ones)."""
    token = _principal.set(principal)
    try:
        yield
    finally:
        _principal.reset(token)


def authenticate(authenticator: Authenticator, header: str, peer_ip: str) -> Principal:
    """The caller named by an `Authorization: Bearer <key>` header, from `peer_ip`."""
    scheme, _, key = header.partition(" ")
    if not header:
        raise _unauthenticated("API_KEY_MISSING", "Send `authorization: Bearer <api key>`.")
    if scheme.lower() != "bearer" or not key.strip():
        raise _unauthenticated("API_KEY_MALFORMED", "Use `authorization: Bearer <api key>`.")
    principal = authenticator.authenticate(key.strip(), peer_ip)
    if principal is None:
        raise _unauthenticated("API_KEY_INVALID", "The API key is unknown or revoked.")
    note(client=principal.client_name)
    return principal


def check_role(principal: Principal, method: str) -> None:
    """PERMISSION_DENIED ROLE_NOT_ALLOWED unless `method` (/package.Service/Method) admits the
    caller's role (permissions.py)."""
    allowed = permissions.ALLOWED_ROLES.get(method, frozenset())
    if principal.role not in allowed:
        raise ServiceError(
            ErrorKind.PERMISSION_DENIED,
            "ROLE_NOT_ALLOWED",
            f"Role {principal.role.value} may not call {method.rsplit('/', 1)[-1]}.",
            metadata={
                "role": principal.role.value,
                "allowed_roles": ",".join(sorted(r.value for r in allowed)),
            },
        )


def _unauthenticated(reason: str, message: str) -> ServiceError:
    return ServiceError(ErrorKind.UNAUTHENTICATED, reason, message)


# --- the process's cap on calls at once --------------------------------------------------------


class InFlight:
    """Load shedding: at most `limit` calls at once in this process, over every transport. One
    more is refused at once, before authentication or any database work, with UNAVAILABLE
    (reason SERVER_BUSY) and a RetryInfo: it did nothing, so repeating it is safe, and every gRPC
    client (the SDK included) retries UNAVAILABLE with backoff. RESOURCE_EXHAUSTED stays the
    caller's own quota (RATE_LIMITED, TOO_MANY_STREAMS), which a retry without waiting does not
    help. Watches are not counted (the transports leave them out): they do no work while they
    wait, and each key may hold only so many."""

    RETRY_AFTER_SECONDS = 0.25

    def __init__(self, limit: int, gauge: Gauge) -> None:
        self.limit = limit
        self.count = 0  # touched only on the server's event loop
        self._gauge = gauge  # the same count, for /metrics

    def enter(self) -> None:
        if 0 < self.limit <= self.count:
            raise ServiceError(
                ErrorKind.UNAVAILABLE,
                "SERVER_BUSY",
                f"The server is serving as many calls as it takes at once ({self.limit}); "
                "nothing was done. Retry shortly, with backoff.",
                metadata={"max_concurrent_rpcs": str(self.limit)},
                retry_after_seconds=self.RETRY_AFTER_SECONDS,
            )
        self.count += 1
        self._gauge.inc()

    def leave(self) -> None:
        self.count -= 1
        self._gauge.dec()


# --- the call's record and outcome ---------------------------------------------------------------


@dataclass
class CallRecord:
    """What is known about the call being served, for its access-log line and metrics: never
    personal data (no names, addresses or documents), only identifiers."""

    started: float = 0.0  # time.perf_counter() when it reached the outermost layer
    via: str = "grpc"  # grpc, connect (Connect, gRPC-Web) or http (a plain HTTP route)
    client: str = ""  # the authenticated client's name; "" before (or without) authentication
    request_id: str = ""  # the request's own request_id, if it has one
    order_id: str = ""  # the order the call was about (asked for, or answered)
    reason: str = ""  # the ErrorInfo reason it was refused with


_call_record: contextvars.ContextVar[CallRecord | None] = contextvars.ContextVar(
    "call_record", default=None
)


def start_call_record(started: float, via: str = "grpc") -> CallRecord:
    """A fresh record for the call being served (by its transport's outermost layer)."""
    record = CallRecord(started, via)
    _call_record.set(record)
    return record


def call_record() -> CallRecord:
    """The record of the call being served (after start_call_record)."""
    record = _call_record.get()
    assert record is not None
    return record


def note(**fields: str) -> None:
    """Set fields of the call's record (nothing outside a call)."""
    record = _call_record.get()
    if record is not None:
        for name, value in fields.items():
            setattr(record, name, value)


def note_request(request: Any) -> None:
    """The request's request_id and the order it names, for the call's record."""
    record = _call_record.get()
    if record is None:
        return
    fields = request.DESCRIPTOR.fields_by_name
    if "request_id" in fields:
        record.request_id = request.request_id
    # An order's id: `order_id`, or `id` in a request about one order (GetOrderRequest,
    # ReleaseOrderRequest, ...).
    name = "order_id" if "order_id" in fields else "id"
    field = fields.get(name)
    about_an_order = name == "order_id" or "Order" in request.DESCRIPTOR.name
    if field is not None and field.type == field.TYPE_STRING and about_an_order:
        record.order_id = getattr(request, name)


def note_response(response: Any) -> None:
    """The id of the order a response carries (SubmitOrder's answer, GetOrder's order)."""
    record = _call_record.get()
    if record is None or record.order_id:
        return
    fields = response.DESCRIPTOR.fields_by_name
    if "order" in fields and fields["order"].message_type is not None:
        if response.HasField("order"):
            record.order_id = response.order.id
    elif "id" in fields and response.DESCRIPTOR.name == "Order":
        record.order_id = response.id


# Refusals that are the server's own failure, not a refusal of the caller's call.
_NOT_REJECTIONS = frozenset({"INTERNAL", "DATABASE_UNAVAILABLE"})
# Distinct client names a process labels ordergate_rejected_calls with; later ones are counted
# as "other" (clients are made by operators, but a label set must stay bounded whatever happens).
MAX_CLIENT_LABELS = 200
_CODE_NUMBERS = {code.name: code.value[0] for code in grpc.StatusCode}


class BoundedLabels:
    """Label values as given, up to `limit` distinct ones; past that, "other"."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) >= self._limit:
            return "other"
        self._seen.add(value)
        return value


class Outcomes:
    """Counts, logs and marks the span of every finished call of one server process."""

    def __init__(self, metrics: Metrics, *, traced: bool) -> None:
        self._metrics = metrics
        self._client_label = BoundedLabels(MAX_CLIENT_LABELS)
        self.traced = traced

    def record(
        self, method: str, code: str, record: CallRecord, duration: float, peer: str
    ) -> None:
        """`method` is /package.Service/Method; `code` the gRPC code name the client got."""
        service, _, name = method.rpartition("/")
        self._metrics.rpcs.labels(name, code).inc()
        self._metrics.latency.labels(name).observe(duration)
        if record.reason == "DUPLICATE_ORDER_ID":
            self._metrics.orders.labels("duplicate").inc()
        if code != "OK" and record.reason and record.reason not in _NOT_REJECTIONS:
            client = self._client_label(record.client or "unauthenticated")
            self._metrics.rejected.labels(client, record.reason).inc()
        if self.traced:
            span = trace.get_current_span()
            span.set_attribute("rpc.grpc.status_code", _CODE_NUMBERS.get(code, 2))
            if code != "OK":
                span.set_status(trace.StatusCode.ERROR, record.reason or code)
        log_access(
            f"{service.rpartition('.')[2]}/{name}",
            code,
            duration,
            client=record.client,
            request_id=record.request_id,
            order_id=record.order_id,
            peer=peer,
            via=record.via,
        )


# The servicers never use their context (the transports do): HTTP calls them with none.
NO_CONTEXT: Any = None


# --- refusals -------------------------------------------------------------------------------------

DATABASE_UNAVAILABLE = ServiceError(
    ErrorKind.UNAVAILABLE, "DATABASE_UNAVAILABLE", "The database is unavailable; retry shortly."
)
INTERNAL = ServiceError(ErrorKind.INTERNAL, "INTERNAL", "Internal error; it is logged.")


def as_service_error(exc: BaseException, method: str) -> ServiceError | None:
    """What the caller is answered for `exc`: a ServiceError as it is, a lost database as
    UNAVAILABLE (safe to retry: requests that change anything carry a request_id), anything
    else as INTERNAL, logged with its traceback (nothing of it reaches the caller). None for a
    cancellation, which is no answer at all. Notes the reason in the call's record."""
    if isinstance(exc, ServiceError):
        error = exc
    elif isinstance(exc, OperationalError):
        log.warning("database unavailable in %s: %s", method, exc.orig)
        error = DATABASE_UNAVAILABLE
    elif isinstance(exc, Exception):
        log.error("unexpected error in %s", method, exc_info=exc)
        error = INTERNAL
    else:
        return None
    note(reason=error.reason)
    return error
