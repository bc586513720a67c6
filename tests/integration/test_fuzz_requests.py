"""Property-based fuzzing of the request messages (hypothesis), on a real server and both
databases: every RPC of every service (unary and streaming) gets messages with random field
values, built from its descriptor — texts short and far past their limits, integers over their
whole type, enum numbers the contract does not define, Timestamps and Durations over protobuf's
whole wire range — sent with a key whose role may call it. Whatever the values, the answer is a
response or a deliberate refusal (a canonical code with an ErrorInfo reason) — never INTERNAL
or UNKNOWN, which would mean an unhandled crash — and the server keeps serving.

Bounded (examples per RPC, derandomized); raw bytes that are not a protobuf message at all are
tried too. A crash found here becomes an @example or a fixed case.
"""

from __future__ import annotations

import contextlib
from typing import Any

import grpc
import pytest
from google.protobuf import descriptor, message, message_factory
from google.protobuf import descriptor_pool as pool_module
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ordergate.v1 import exception_queue_service_pb2 as eq
from ordergate.v1 import inventory_service_pb2 as inventory
from ordergate.v1 import order_service_pb2 as orders
from ordergate.v1 import pricing_service_pb2 as pricing
from ordergate_server.api import permissions
from ordergate_server.api.server import SERVICE_NAMES
from ordergate_server.domain.access import Role

from ..support import Keys, ServerThread, auth, rich_error

FUZZ = settings(
    max_examples=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

POOL = pool_module.Default()
METHODS = [
    method for service in SERVICE_NAMES for method in POOL.FindServiceByName(service).methods
]


def _key_for(keys: Keys, path: str) -> str:
    allowed = permissions.ALLOWED_ROLES[path]
    for role, key in (
        (Role.WEBSITE, keys.shop),
        (Role.MANAGER, keys.manager),
        (Role.ADMIN, keys.admin),
        (Role.WAREHOUSE, keys.warehouse),
        (Role.OPERATIONS, keys.operations),
        (Role.FINANCE, keys.finance),
    ):
        if role in allowed:
            return key
    raise AssertionError(f"no role may call {path}")


_SCALARS: dict[int, st.SearchStrategy[Any]] = {
    descriptor.FieldDescriptor.TYPE_STRING: st.one_of(
        st.text(max_size=40),
        st.integers(60, 5_000).map(lambda n: "é" * n),  # past every text limit
        st.sampled_from(["SKU-1001", "C-1001", "WH-MAIN", "shop-a", "", "0", "-1", "%", "'"]),
        st.uuids().map(str),
    ),
    descriptor.FieldDescriptor.TYPE_BYTES: st.one_of(
        st.binary(max_size=200), st.just(b"<Order xmlns='urn:ordergate:order:v1'/>")
    ),
    descriptor.FieldDescriptor.TYPE_BOOL: st.booleans(),
    descriptor.FieldDescriptor.TYPE_INT32: st.integers(-(2**31), 2**31 - 1),
    descriptor.FieldDescriptor.TYPE_INT64: st.integers(-(2**63), 2**63 - 1),
    descriptor.FieldDescriptor.TYPE_UINT32: st.integers(0, 2**32 - 1),
    descriptor.FieldDescriptor.TYPE_UINT64: st.integers(0, 2**64 - 1),
    descriptor.FieldDescriptor.TYPE_DOUBLE: st.floats(allow_nan=True, allow_infinity=True),
    descriptor.FieldDescriptor.TYPE_FLOAT: st.floats(width=32),
}


def _value(field: descriptor.FieldDescriptor, depth: int) -> st.SearchStrategy[Any]:
    if field.enum_type is not None:
        return st.integers(-2, len(field.enum_type.values) + 2)
    if field.message_type is not None:
        return _messages(field.message_type, depth + 1)
    return _SCALARS.get(field.type, st.none())


# protobuf's whole wire range for the well-known types, valid or not.
_WELL_KNOWN: dict[str, st.SearchStrategy[Any]] = {
    name: st.builds(
        message_factory.GetMessageClass(POOL.FindMessageTypeByName(name)),
        seconds=st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-(10**11), 10**11)),
        nanos=st.integers(-(2**31), 2**31 - 1),
    )
    for name in ("google.protobuf.Timestamp", "google.protobuf.Duration")
}


def _messages(message_type: descriptor.Descriptor, depth: int = 0) -> st.SearchStrategy[Any]:
    cls = message_factory.GetMessageClass(message_type)
    if message_type.full_name in _WELL_KNOWN:
        return _WELL_KNOWN[message_type.full_name]
    if (
        depth > 2
        or message_type.full_name.startswith("google.protobuf.")
        or not message_type.fields
    ):
        return st.builds(cls)

    @st.composite
    def build(draw: st.DrawFn) -> message.Message:
        built = cls()
        for field in message_type.fields:
            if not draw(st.booleans()):
                continue
            values = _value(field, depth)
            if field.is_repeated:
                if field.message_type is not None and field.message_type.GetOptions().map_entry:
                    continue  # maps: left empty
                for item in draw(st.lists(values, max_size=3)):
                    if field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
                        getattr(built, field.name).add().CopyFrom(item)
                    else:
                        getattr(built, field.name).append(item)
            elif field.type == descriptor.FieldDescriptor.TYPE_MESSAGE:
                getattr(built, field.name).CopyFrom(draw(values))
            else:
                # A closed enum value the runtime refuses: left unset.
                with contextlib.suppress(ValueError):
                    setattr(built, field.name, draw(values))
        return built

    return build()


_DELIBERATE = set(grpc.StatusCode) - {grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN}


def _refusal(call: Any, request: object, key: str) -> grpc.RpcError | None:
    try:
        call(request, metadata=auth(key), timeout=30)
    except grpc.RpcError as error:
        return error
    return None


def _check_error(path: str, request: object, error: grpc.RpcError) -> None:
    if error.code() == grpc.StatusCode.DEADLINE_EXCEEDED and "/Watch" in path:
        return  # a watch that was let in and waits for news
    assert error.code() in _DELIBERATE, (path, request, error)
    assert rich_error(error).reason, (path, request)  # a stable reason to act on


def _check_answer(
    channel: grpc.Channel,
    method: descriptor.MethodDescriptor,
    requests: list[message.Message],
    key: str,
) -> None:
    """Send `requests` (one, or a stream of them) and check what comes back: for a watch the
    first message or its refusal; for a bulk stream also each item's own error."""
    path = f"/{method.containing_service.full_name}/{method.name}"
    serialize, raw = (lambda m: m.SerializeToString()), (lambda b: b)
    try:
        if method.client_streaming and method.server_streaming:
            call = channel.stream_stream(path, serialize, raw)
            for answer in call(iter(requests), metadata=auth(key), timeout=30):
                item = orders.SubmitOrdersResponse.FromString(answer)
                if item.HasField("error"):
                    assert item.error.code not in ("INTERNAL", "UNKNOWN"), (requests, item)
                    assert item.error.reason, (requests, item)
        elif method.client_streaming:
            channel.stream_unary(path, serialize, raw)(
                iter(requests), metadata=auth(key), timeout=30
            )
        elif method.server_streaming:
            stream = channel.unary_stream(path, serialize, raw)(
                requests[0], metadata=auth(key), timeout=1
            )
            next(iter(stream), None)
            stream.cancel()  # type: ignore[no-untyped-call]
        else:
            channel.unary_unary(path, serialize, raw)(requests[0], metadata=auth(key), timeout=30)
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.CANCELLED:  # our own cancel of a watch
            _check_error(path, requests, error)


@pytest.mark.parametrize(
    "method", METHODS, ids=lambda m: m.full_name.rsplit(".", 2)[-2] + "/" + m.name
)
def test_random_requests_get_deliberate_answers(
    server: ServerThread, keys: Keys, method: descriptor.MethodDescriptor
) -> None:
    path = f"/{method.containing_service.full_name}/{method.name}"
    key = _key_for(keys, path)
    items = st.lists(_messages(method.input_type), min_size=1, max_size=3)
    with grpc.insecure_channel(server.target) as channel:

        @FUZZ
        @given(items if method.client_streaming else items.map(lambda r: r[:1]))
        def fuzz(requests: list[message.Message]) -> None:
            _check_answer(channel, method, requests, key)

        fuzz()
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


@FUZZ
@given(st.binary(max_size=300))
def test_bytes_that_are_not_a_message_leave_the_server_serving(
    server: ServerThread, keys: Keys, raw: bytes
) -> None:
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(
            "/ordergate.v1.OrderService/SubmitOrder",
            request_serializer=lambda b: b,
            response_deserializer=bytes,
        )
        error = _refusal(call, raw, keys.shop)
        assert error is None or error.code() != grpc.StatusCode.UNKNOWN
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(), timeout=10
        )
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


# --- what the fuzzer found, kept as regressions ---


def _refused(server: ServerThread, path: str, request: message.Message, key: str) -> grpc.RpcError:
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(
            path, request_serializer=lambda m: m.SerializeToString(), response_deserializer=bytes
        )
        error = _refusal(call, request, key)
    assert error is not None, "the request was accepted"
    return error


def test_a_negative_page_size_of_held_orders_is_refused(server: ServerThread, keys: Keys) -> None:
    # Found: IndexError (INTERNAL) in ListHeldOrders for page_size < 0.
    error = _refused(
        server,
        "/ordergate.v1.ExceptionQueueService/ListHeldOrders",
        eq.ListHeldOrdersRequest(page_size=-1),
        keys.manager,
    )
    assert rich_error(error).reason == "PAGE_SIZE_INVALID"


def test_nul_in_a_text_field_is_refused_by_name(server: ServerThread, keys: Keys) -> None:
    # Found: PostgreSQL DataError (INTERNAL) for "\0" in ListOrders.customer_account.
    error = _refused(
        server,
        "/ordergate.v1.OrderService/ListOrders",
        orders.ListOrdersRequest(customer_account="C-\x00"),
        keys.admin,
    )
    refusal = rich_error(error)
    assert (refusal.code, refusal.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TEXT_CONTAINS_NUL")
    assert refusal.field_violations == [("customer_account", "contains NUL")]


def test_nul_in_a_list_or_a_nested_text_field_is_refused_by_its_position(
    server: ServerThread, keys: Keys
) -> None:
    """The NUL check scans a list of strings in one go; it must still name the item."""
    error = _refused(
        server,
        "/ordergate.v1.InventoryService/GetStockLevels",
        inventory.GetStockLevelsRequest(codes=["SKU-1001", "SKU-\x001002", "SKU-1003"]),
        keys.shop,
    )
    refusal = rich_error(error)
    assert (refusal.code, refusal.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "TEXT_CONTAINS_NUL")
    assert refusal.field_violations == [("codes[1]", "contains NUL")]
    error = _refused(
        server,
        "/ordergate.v1.PricingService/GetCustomerPrices",
        pricing.GetCustomerPricesRequest(
            customer_account="C-1",
            items=[pricing.PriceQuery(code="SKU-1001"), pricing.PriceQuery(code="\x00")],
        ),
        keys.shop,
    )
    assert rich_error(error).field_violations == [("items[1].code", "contains NUL")]


def test_bytes_that_are_not_the_request_message_are_a_bad_request(
    server: ServerThread, keys: Keys
) -> None:
    # Found: UNKNOWN with the protobuf parser's exception text.
    with grpc.insecure_channel(server.target) as channel:
        call = channel.unary_unary(
            "/ordergate.v1.OrderService/SubmitOrder",
            request_serializer=lambda b: b,
            response_deserializer=bytes,
        )
        error = _refusal(call, b"\x0a\xff\xff\xff\xff\x0f", keys.shop)
    assert error is not None
    refusal = rich_error(error)
    assert (refusal.code, refusal.reason) == (grpc.StatusCode.INVALID_ARGUMENT, "REQUEST_MALFORMED")
