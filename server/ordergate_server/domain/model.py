"""The order model: states, hold reasons and the order as the rules see it."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import NamedTuple


class OrderState(enum.Enum):
    """Lifecycle state of an order; the values are the names stored in the database."""

    ON_HOLD = "ON_HOLD"
    ACCEPTED = "ACCEPTED"
    PICKING = "PICKING"
    PICKED = "PICKED"
    PACKED = "PACKED"
    # Some of it has shipped; the rest (not cancelled) has not yet.
    PARTLY_DISPATCHED = "PARTLY_DISPATCHED"
    DISPATCHED = "DISPATCHED"
    DELIVERED = "DELIVERED"
    CANCELLED = "CANCELLED"


class HoldCode(enum.StrEnum):
    """Stable reason codes for ON_HOLD orders. Never rename one: clients match on them."""

    # The document could not be read as an order.
    XML_MALFORMED = "XML_MALFORMED"
    XML_FORBIDDEN_CONSTRUCT = "XML_FORBIDDEN_CONSTRUCT"
    XML_LIMIT_EXCEEDED = "XML_LIMIT_EXCEEDED"
    SCHEMA_INVALID = "SCHEMA_INVALID"
    # A known order format Ordergate does not read (cXML, openTRANS, EDIFACT, X12): the
    # message names it.
    FORMAT_UNSUPPORTED = "FORMAT_UNSUPPORTED"
    # Read, but holding a value storage cannot keep as given (domain/limits.py): an id longer
    # than its column, a price with too many digits, a date outside the years 1 to 9999.
    VALUE_TOO_LONG = "VALUE_TOO_LONG"
    VALUE_OUT_OF_RANGE = "VALUE_OUT_OF_RANGE"
    # Mandatory-field rules.
    ORDER_ID_MISSING = "ORDER_ID_MISSING"
    CUSTOMER_MISSING = "CUSTOMER_MISSING"
    CUSTOMER_UNKNOWN = "CUSTOMER_UNKNOWN"
    # No longer given: another client's customer is CUSTOMER_UNKNOWN, so that a tenant cannot
    # tell another tenant's customers from accounts that do not exist. Kept: codes are stable.
    CUSTOMER_OTHER_CLIENT = "CUSTOMER_OTHER_CLIENT"
    CURRENCY_MISSING = "CURRENCY_MISSING"
    CURRENCY_MISMATCH = "CURRENCY_MISMATCH"
    SKU_MISSING = "SKU_MISSING"
    SKU_UNKNOWN = "SKU_UNKNOWN"
    SKU_RENAMED = "SKU_RENAMED"
    QUANTITY_INVALID = "QUANTITY_INVALID"
    LINE_NUMBER_DUPLICATE = "LINE_NUMBER_DUPLICATE"
    ADDRESS_INCOMPLETE = "ADDRESS_INCOMPLETE"
    COUNTRY_INVALID = "COUNTRY_INVALID"
    PHONE_MISSING = "PHONE_MISSING"
    PHONE_INVALID = "PHONE_INVALID"
    SPECIAL_HANDLING_REQUIRED = "SPECIAL_HANDLING_REQUIRED"
    # Rules of a standard document format (UBL 2.1 / PEPPOL BIS Order 3); the reason's `rule`
    # names the rule of the standard.
    UNIT_UNSUPPORTED = "UNIT_UNSUPPORTED"
    CURRENCY_INCONSISTENT = "CURRENCY_INCONSISTENT"
    TOTAL_MISMATCH = "TOTAL_MISMATCH"
    DELIVERY_SPLIT = "DELIVERY_SPLIT"
    # Allocation.
    INSUFFICIENT_STOCK = "INSUFFICIENT_STOCK"
    # Accepted, then left without the stock allocated to it by a count, an adjustment or a store
    # sale (an OVERSOLD location): back in the queue, re-checked like INSUFFICIENT_STOCK.
    STOCK_SHORT = "STOCK_SHORT"
    # Put on hold by a person (HoldOrder), its stock kept; lifted by ReleaseOrder.
    MANUAL_HOLD = "MANUAL_HOLD"
    # The order had more reasons than are kept (domain/limits.py); this one says how many.
    MORE_REASONS = "MORE_REASONS"


# Holds that only stock can lift: an order held for these alone is re-checked when stock rises.
STOCK_HOLDS = frozenset({HoldCode.INSUFFICIENT_STOCK, HoldCode.STOCK_SHORT})


class OrderSource(enum.Enum):
    """How an order came in; the values are stored."""

    API = "API"  # a client's call (gRPC or HTTP)
    FILE_DROP = "FILE_DROP"  # a file in the client's drop folder
    MANUAL = "MANUAL"  # entered by staff for a client (phone and e-mail orders)


class Channel(enum.Enum):
    """How one document was received (the submission log); the values are stored."""

    GRPC = "GRPC"
    HTTP = "HTTP"
    FILE_DROP = "FILE_DROP"
    MANUAL = "MANUAL"


class ShipmentState(enum.Enum):
    SHIPPED = "SHIPPED"  # handed to the carrier
    IN_TRANSIT = "IN_TRANSIT"
    DELIVERED = "DELIVERED"


@dataclass(frozen=True)
class HoldReason:
    """Why an order is held: a stable code, the field path it concerns and a human sentence."""

    code: HoldCode
    field: str
    message: str
    # The rule of the document's standard that failed, such as "PEPPOL-T01-R001"; "" for
    # Ordergate's own rules.
    rule: str = ""

    def to_dict(self) -> dict[str, str]:
        """As stored with the order and written in file-drop result files."""
        stored = {"code": self.code.value, "field": self.field, "message": self.message}
        return stored | {"rule": self.rule} if self.rule else stored


@dataclass(frozen=True)
class Address:
    name: str = ""
    street_lines: tuple[str, ...] = ()
    city: str = ""
    postal_code: str = ""
    region: str = ""
    country_code: str = ""


@dataclass(frozen=True)
class Delivery:
    address: Address = field(default_factory=Address)
    phone: str = ""
    email: str = ""
    window_start: datetime | None = None
    window_end: datetime | None = None
    special_handling: str = ""


class LineDraft(NamedTuple):  # ten or more per order: a NamedTuple is cheap to make
    """An order line as submitted; `quantity_text` stays text until the rules have judged it."""

    line_number: int
    code: str  # SKU, alias or barcode exactly as submitted ("" when none was given)
    code_is_barcode: bool
    quantity_text: str
    unit_price: Decimal | None = None

    @property
    def catalog_key(self) -> tuple[str, bool]:
        """How the catalog is asked about this line: (code, whether it is a barcode)."""
        return (self.code, self.code_is_barcode)

    @property
    def quantity(self) -> int:
        """The quantity as a positive whole number, or 0 when it is not one."""
        return whole_positive_quantity(self.quantity_text) or 0


@dataclass(frozen=True)
class OrderDraft:
    """An order as submitted, in any accepted XML format, before any rule has run."""

    client_order_id: str
    order_time: datetime | None
    customer_account: str
    channel: str
    currency: str
    delivery: Delivery
    lines: tuple[LineDraft, ...]
    notes: str = ""
    # Rules of the document's own format that it breaks, found while reading it (a UBL order's
    # PEPPOL rules, its unit codes); the mandatory-field rules report them with their own.
    document_reasons: tuple[HoldReason, ...] = ()


@dataclass(frozen=True)
class Product:
    """A catalog product, as far as the order rules need it."""

    sku: str
    requires_special_handling: bool = False


@dataclass(frozen=True)
class Customer:
    account: str
    currency: str
    requires_special_handling: bool = False
    client_id: int | None = None  # the website client the customer buys through, if tied to one


# The most pieces one order line may ask for: what an INTEGER column holds (domain/limits.py
# names it MAX_PIECES; defined here, where quantities are read, to keep the model free of it).
MAX_LINE_QUANTITY = 2**31 - 1


def whole_positive_quantity(text: str) -> int | None:
    """Parse a quantity that must be a positive whole number no larger than MAX_LINE_QUANTITY:
    "3" and "3.0" yes; "0", "1.5" and "2147483648" no."""
    # Plain ASCII digits (nearly every line) need no Decimal: a quantity is read twice per line
    # (rules, then the line record), and Decimal parsing was ~7% of storing a batch.
    if len(text) <= 18 and text.isascii() and text.isdigit():
        quantity = int(text)
        return quantity if 0 < quantity <= MAX_LINE_QUANTITY else None
    try:
        value = Decimal(text.strip())
    except (ArithmeticError, ValueError):
        return None
    if (
        not value.is_finite()
        or not 0 < value <= MAX_LINE_QUANTITY
        or value != value.to_integral_value()
    ):
        return None
    return int(value)
