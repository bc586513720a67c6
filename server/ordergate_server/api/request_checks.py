"""Every field of every request within its documented limits, checked as the request is decoded,
before authentication has let it reach any service (docs/security.md, "Field limits").

- Text: no NUL (PostgreSQL refuses it, and it is never meant), and at most the field's length:
  TEXT_LIMITS by field name; any other text field is an id or a code (64 characters).
- Lists: at most MAX_ITEMS items, or the field's own limit in ITEM_LIMITS.
- 64-bit integers: the field's range in INT64_RANGES (what storage holds); 32-bit ones always
  fit an INTEGER column and are left to the services' own rules.
- Enums: a value the contract defines (proto3 lets any number through).
- Timestamps: 0001-01-01 to 9999-12-31 UTC, nanos 0 to 999,999,999 (protobuf's own range);
  Durations within ±10,000 years with nanos of the seconds' sign, and the field's own range in
  DURATION_RANGES.

A request that breaks any of these is INVALID_ARGUMENT with a field violation per finding
(the first few; api/errors.py bounds every answer), the reason of the first: TEXT_TOO_LONG,
TEXT_CONTAINS_NUL, TOO_MANY_ITEMS, VALUE_OUT_OF_RANGE, ENUM_VALUE_UNKNOWN, TIMESTAMP_INVALID or
DURATION_INVALID. Nothing of the client's value is repeated in the answer.

The checks for a field are built once, the first time the field is seen, and a request walks
only the fields it sets: a SubmitOrder request costs a few microseconds (bench/hostile.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ..domain.limits import (
    CODE_CHARS,
    DECIMAL_CHARS,
    MAX_PIECES,
    NAME_CHARS,
    TEXT_CHARS,
)
from ..service.errors import ErrorKind, FieldViolation, ServiceError

# Longest text per field name; every other text field is an id or a code.
TEXT_LIMITS: dict[str, int] = {
    "reason": TEXT_CHARS,
    "note": TEXT_CHARS,
    "name": NAME_CHARS,
    "subject": NAME_CHARS,  # audit subjects: "stock/<sku>@<location>"
    "client": 100,  # API client names (clients.name)
    "actor": 100,
    "carrier": 100,
    "tracking_number": 100,
    "tracking_url": 500,
    "on_behalf_of_client": 100,
    "page_token": 512,
    "unit_price": DECIMAL_CHARS,
    "list_price": DECIMAL_CHARS,
    "amount": DECIMAL_CHARS,
    "remaining": DECIMAL_CHARS,
    "url": 2000,  # webhook endpoints
    "description": 200,
    "disabled_reason": TEXT_CHARS,
    "notes": TEXT_CHARS,  # purchase orders and their lines
    "variance_reason": TEXT_CHARS,
    "supplier": NAME_CHARS,
    "source": NAME_CHARS,  # a stock reconciliation's source
}
# Currencies are left at the default: every service that takes one checks it is an ISO 4217
# code, and says so better than a length limit would.
DEFAULT_TEXT_CHARS = CODE_CHARS

MAX_ITEMS = 1_000
# Lists with a limit of their own (full names). The ERP pushes its catalog in large batches.
# None: the service counts the items and refuses too many with its own reason (TOO_MANY_CODES,
# ITEMS_INVALID), which clients already know; the message size bounds them until then.
ITEM_LIMITS: dict[str, int | None] = {
    "ordergate.v1.GetStockLevelsRequest.codes": None,
    "ordergate.v1.WatchStockLevelsRequest.codes": None,
    "ordergate.v1.GetCustomerPricesRequest.items": None,
    "ordergate.v1.UpsertLocationsRequest.locations": 10_000,
    "ordergate.v1.UpsertProductsRequest.products": 10_000,
    "ordergate.v1.UpsertCustomersRequest.customers": 10_000,
    "ordergate.v1.UpsertPriceListsRequest.price_lists": 10_000,
    "ordergate.v1.PriceList.entries": 10_000,
    "ordergate.v1.UpsertContractPricesRequest.contract_prices": 10_000,
    "ordergate.v1.UpsertCreditNotesRequest.credit_notes": 10_000,
    "ordergate.v1.ReconcileStockRequest.entries": 10_000,
}

_INT64_MAX = 2**63 - 1
# The range of every 64-bit integer field of a request (a field missing here fails the first
# request that sets it, and a test). A low end of None leaves the low end to the service, which
# answers with its own reason (COUNT_NEGATIVE, ITEMS_INVALID) that says what is meant.
INT64_RANGES: dict[str, tuple[int | None, int]] = {
    "ordergate.v1.AdjustStockRequest.delta": (-MAX_PIECES, MAX_PIECES),
    "ordergate.v1.RecordStockCountRequest.counted": (None, MAX_PIECES),
    "ordergate.v1.PriceQuery.quantity": (None, MAX_PIECES),
    "ordergate.v1.WatchStockLevelsRequest.after_change_id": (0, _INT64_MAX),
    "ordergate.v1.LineQuantity.quantity": (0, MAX_PIECES),
    "ordergate.v1.NewPurchaseOrderLine.quantity": (None, MAX_PIECES),
    "ordergate.v1.ReceiptLine.received_quantity": (None, MAX_PIECES),
    "ordergate.v1.ReceiptLine.damaged_quantity": (None, MAX_PIECES),
    "ordergate.v1.StockCountEntry.quantity": (None, MAX_PIECES),
    "ordergate.v1.TriageLine.quantity": (0, MAX_PIECES),
}

_SECONDS_A_YEAR = 31_556_952  # the Gregorian year
# Duration fields' own ranges, in seconds (full names).
DURATION_RANGES: dict[str, tuple[int, int]] = {
    "ordergate.v1.ListHeldOrdersRequest.min_age": (0, 100 * _SECONDS_A_YEAR),
    "ordergate.v1.RotateWebhookSecretRequest.overlap": (0, 7 * 86_400),
}

# protobuf's documented ranges (google/protobuf/timestamp.proto, duration.proto).
_TIMESTAMP_SECONDS = (-62_135_596_800, 253_402_300_799)  # 0001-01-01 .. 9999-12-31 UTC
_DURATION_SECONDS = 315_576_000_000  # 10,000 years
_NANOS = 999_999_999


@dataclass(frozen=True)
class Violation:
    reason: str
    field: str
    description: str


Found = list[Violation]
Check = Callable[[Any, str, Found], None]


def check_request(message: Message) -> None:
    """Raise INVALID_ARGUMENT naming every field of `message` past its limits."""
    found: Found = []
    _walk(message, "", found)
    if found:
        first = found[0]
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            first.reason,
            f"{len(found)} field(s) of the request are past their limits (docs/security.md), "
            f"first {first.field}: {first.description}.",
            field_violations=[FieldViolation(v.field, v.description) for v in found],
        )


def _walk(message: Message, prefix: str, found: Found) -> None:
    for field, value in message.ListFields():
        check = _CHECKS.get(field)
        if check is None:
            check = _CHECKS[field] = _check_for(field)
        check(value, prefix + field.name, found)


_CHECKS: dict[FieldDescriptor, Check] = {}


def _check_for(field: FieldDescriptor) -> Check:
    """The check of one field (its value as ListFields gives it, its path in the request)."""
    is_map = field.message_type is not None and field.message_type.GetOptions().map_entry
    if is_map:
        return _map_check(field)
    one = _one_value_check(field)
    if not field.is_repeated:
        return one
    limit = ITEM_LIMITS.get(field.full_name, MAX_ITEMS)

    def each(values: Any, path: str, found: Found) -> None:
        if limit is not None and len(values) > limit:
            found.append(Violation("TOO_MANY_ITEMS", path, f"at most {limit:,} items"))
            return
        if one is _nothing:
            return
        if field.type == FieldDescriptor.TYPE_STRING and not _long_or_nul(values, field):
            return  # a list of codes: one pass in C instead of one call per item
        for index, value in enumerate(values):
            one(value, f"{path}[{index}]", found)

    return each


def _long_or_nul(values: Any, field: FieldDescriptor) -> bool:
    limit = TEXT_LIMITS.get(field.name, DEFAULT_TEXT_CHARS)
    return "\x00" in "".join(values) or max(map(len, values), default=0) > limit


def _nothing(_value: Any, _path: str, _found: Found) -> None:
    return None


def _one_value_check(field: FieldDescriptor) -> Check:
    if field.type == FieldDescriptor.TYPE_STRING:
        return _text_check(TEXT_LIMITS.get(field.name, DEFAULT_TEXT_CHARS))
    if field.enum_type is not None:
        return _enum_check(frozenset(field.enum_type.values_by_number))
    if field.type in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64):
        if field.full_name not in INT64_RANGES:
            raise KeyError(f"{field.full_name}: a 64-bit field without a range (INT64_RANGES)")
        return _range_check(*INT64_RANGES[field.full_name])
    if field.message_type is not None:
        kind = field.message_type.full_name
        if kind == "google.protobuf.Timestamp":
            return _timestamp_check
        if kind == "google.protobuf.Duration":
            return _duration_check(DURATION_RANGES.get(field.full_name))
        return _message_check
    return _nothing  # bools, bytes (sized by the message limit), 32-bit integers


def _text_check(limit: int) -> Check:
    def check(value: str, path: str, found: Found) -> None:
        if len(value) > limit:
            found.append(Violation("TEXT_TOO_LONG", path, f"at most {limit:,} characters"))
        if "\x00" in value:
            found.append(Violation("TEXT_CONTAINS_NUL", path, "contains NUL"))

    return check


def _enum_check(defined: frozenset[int]) -> Check:
    def check(value: int, path: str, found: Found) -> None:
        if value not in defined:
            found.append(Violation("ENUM_VALUE_UNKNOWN", path, "not a value of the enum"))

    return check


def _range_check(low: int | None, high: int) -> Check:
    words = _range_words(low, high)

    def check(value: int, path: str, found: Found) -> None:
        if value > high or (low is not None and value < low):
            found.append(Violation("VALUE_OUT_OF_RANGE", path, words))

    return check


def _range_words(low: int | None, high: int) -> str:
    return f"at most {high:,}" if low is None else f"{low:,} to {high:,}"


def _message_check(value: Message, path: str, found: Found) -> None:
    _walk(value, f"{path}.", found)


def _timestamp_check(value: Any, path: str, found: Found) -> None:
    low, high = _TIMESTAMP_SECONDS
    if not low <= value.seconds <= high or not 0 <= value.nanos <= _NANOS:
        found.append(
            Violation("TIMESTAMP_INVALID", path, "0001-01-01 to 9999-12-31 UTC, valid nanos")
        )


def _duration_check(own: tuple[int, int] | None) -> Check:
    def check(value: Any, path: str, found: Found) -> None:
        seconds, nanos = value.seconds, value.nanos
        valid = (
            abs(seconds) <= _DURATION_SECONDS
            and abs(nanos) <= _NANOS
            and not (seconds > 0 > nanos or seconds < 0 < nanos)
        )
        if not valid:
            found.append(Violation("DURATION_INVALID", path, "not a valid Duration"))
        elif own is not None and not own[0] <= seconds + nanos / 1e9 <= own[1]:
            found.append(Violation("DURATION_INVALID", path, f"{own[0]:,} to {own[1]:,} seconds"))

    return check


def _map_check(field: FieldDescriptor) -> Check:
    entry = field.message_type
    assert entry is not None
    key_check = _one_value_check(entry.fields_by_name["key"])
    value_check = _one_value_check(entry.fields_by_name["value"])

    def check(mapping: Any, path: str, found: Found) -> None:
        if len(mapping) > MAX_ITEMS:
            found.append(Violation("TOO_MANY_ITEMS", path, f"at most {MAX_ITEMS:,} items"))
            return
        for key, value in mapping.items():
            key_check(key, f"{path}.key", found)
            value_check(value, f"{path}[{key!r:.40}]", found)

    return check


def request_fields(descriptor: Descriptor) -> list[FieldDescriptor]:
    """Every field reachable from a request type (each message type once), for the tests and
    the documentation that list the limits."""
    seen: set[str] = set()
    fields: list[FieldDescriptor] = []

    def visit(message: Descriptor) -> None:
        if message.full_name in seen or message.full_name.startswith("google.protobuf."):
            return
        seen.add(message.full_name)
        for field in message.fields:
            fields.append(field)
            if field.message_type is not None:
                visit(field.message_type)

    visit(descriptor)
    return fields


def text_limit(field: FieldDescriptor) -> int:
    """The longest text `field` takes."""
    return TEXT_LIMITS.get(field.name, DEFAULT_TEXT_CHARS)


def described(field: FieldDescriptor) -> str:
    """The limits of `field` in words, as docs/security.md lists them ("" for none)."""
    parts = []
    if field.is_repeated:
        limit = ITEM_LIMITS.get(field.full_name, MAX_ITEMS)
        parts.append(f"at most {limit:,} items" if limit else "items counted by the service")
    if field.type == FieldDescriptor.TYPE_STRING:
        parts.append(f"at most {text_limit(field):,} characters, no NUL")
    elif field.enum_type is not None:
        parts.append("a value the enum defines")
    elif field.full_name in INT64_RANGES:
        parts.append(_range_words(*INT64_RANGES[field.full_name]))
    elif field.message_type is not None and field.message_type.full_name == (
        "google.protobuf.Timestamp"
    ):
        parts.append("0001-01-01 to 9999-12-31 UTC")
    elif field.message_type is not None and field.message_type.full_name == (
        "google.protobuf.Duration"
    ):
        low, high = DURATION_RANGES.get(field.full_name, (-_DURATION_SECONDS, _DURATION_SECONDS))
        parts.append(f"{low:,} to {high:,} seconds")
    return "; ".join(parts)


def limits_table(requests: list[Descriptor]) -> str:
    """The Markdown table of docs/security.md ("Field limits"): each limit and the fields of
    `requests` (request types) held to it; a test keeps the page in step with the code."""
    by_limit: dict[str, set[str]] = {}
    for request in requests:
        for field in request_fields(request):
            if limit := described(field):
                by_limit.setdefault(limit, set()).add(field.full_name.removeprefix("ordergate.v1."))
    rows = [
        f"| {limit} | {', '.join(f'`{name}`' for name in sorted(names))} |"
        for limit, names in sorted(by_limit.items(), key=lambda item: (-len(item[1]), item[0]))
    ]
    return "\n".join(["| Limit | Fields |", "|---|---|", *rows])
