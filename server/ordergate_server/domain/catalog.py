"""The catalog as the ERP pushes it: plain values, validated before anything is stored."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal


@dataclass(frozen=True)
class LocationSpec:
    code: str
    name: str
    priority: int = 100


@dataclass(frozen=True)
class ProductSpec:
    sku: str
    name: str
    barcodes: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    requires_special_handling: bool = False
    components: tuple[tuple[str, int], ...] = ()  # (component sku, quantity per kit)
    list_price: Decimal | None = None
    list_currency: str = ""


@dataclass(frozen=True)
class CustomerSpec:
    account: str
    name: str
    currency: str
    requires_special_handling: bool = False
    client: str = ""  # API client name; "" for none
    price_list: str = ""


@dataclass(frozen=True)
class PriceEntry:
    sku: str
    min_quantity: int
    unit_price: Decimal
    valid_from: datetime
    valid_to: datetime | None = None

    def applies(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


@dataclass(frozen=True)
class PriceListSpec:
    code: str
    name: str
    currency: str
    entries: tuple[PriceEntry, ...] = field(default=())


@dataclass(frozen=True)
class ContractPriceSpec:
    customer: str
    sku: str
    unit_price: Decimal
    valid_from: datetime
    valid_to: datetime | None = None

    def applies(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_to is None or at < self.valid_to)


@dataclass(frozen=True)
class CreditNoteSpec:
    id: str
    customer: str
    currency: str
    amount: Decimal
    remaining: Decimal
    issued_at: datetime
    expires_at: datetime | None = None
