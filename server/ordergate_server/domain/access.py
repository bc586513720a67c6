"""Who is calling: API clients, their roles, and the identity a request runs under."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What an API client may do. Each RPC names the roles it admits (api/permissions.py)."""

    WEBSITE = "website"  # submits its own orders and reads only its own
    ADMIN = "admin"  # reads everything; manages the catalog and keys
    MANAGER = "manager"  # exception-queue decisions, stock corrections, cancellations
    WAREHOUSE = "warehouse"  # fulfilment transitions: picking, packing, dispatch, delivery
    OPERATIONS = "operations"  # the exception-queue desk: corrections, re-checks, phone orders
    FINANCE = "finance"  # reads orders, stock and prices


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    client_id: int
    client_name: str
    role: Role
    key_id: str = ""  # the API key in use ("" for work not done through a key)

    @property
    def sees_only_own_orders(self) -> bool:
        """A website sees only its own orders and customers; staff roles see all of them."""
        return self.role is Role.WEBSITE
