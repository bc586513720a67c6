"""Who is calling: API clients, their roles, and the identity a request runs under."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What an API client may do. Each RPC names the roles it admits (domain/permissions.py)."""

    WEBSITE = "website"  # submits its own orders and reads only its own
    STOREFRONT = "storefront"  # a shop's front end: stock, its own customers' prices; no orders
    ADMIN = "admin"  # reads everything; manages the catalog and keys
    MANAGER = "manager"  # exception-queue decisions, stock corrections, cancellations
    WAREHOUSE = "warehouse"  # fulfilment transitions: picking, packing, dispatch, delivery
    OPERATIONS = "operations"  # the exception-queue desk: corrections, re-checks, phone orders
    FINANCE = "finance"  # reads orders, stock and prices


# A key may carry a narrower role than its client: a website client's storefront keys (a shop's
# front end reads stock and its customers' prices with them; they cannot touch an order).
KEY_ROLE_OF_CLIENT = {Role.STOREFRONT: Role.WEBSITE}


def client_role_for(key_role: Role) -> Role:
    """The role of the client a key of `key_role` belongs to."""
    return KEY_ROLE_OF_CLIENT.get(key_role, key_role)


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of one request."""

    client_id: int
    client_name: str
    role: Role
    key_id: str = ""  # the API key in use ("" for work not done through a key)
    # A person signed in to the console (service/staff.py): their username, which is also
    # `client_name`, the name services record as the actor. "" for an API key's caller.
    person: str = ""

    @property
    def sees_only_own_client(self) -> bool:
        """A website or storefront sees only its own client's orders, customers and prices;
        staff roles see all of them."""
        return self.role in (Role.WEBSITE, Role.STOREFRONT)
