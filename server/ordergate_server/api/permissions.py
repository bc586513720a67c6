"""The API's role table lives in the domain (domain/permissions.py), where the console and the
file drop read it too; the transports import it from here."""

from ..domain.permissions import ALLOWED_ROLES, PUBLIC_SERVICES, is_public, may

__all__ = ["ALLOWED_ROLES", "PUBLIC_SERVICES", "is_public", "may"]
