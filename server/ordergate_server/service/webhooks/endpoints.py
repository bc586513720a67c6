"""A client's webhook endpoints: register, list, change, delete, rotate the signing secret.

A website key manages its own client's endpoints; an admin key any client's (naming it). Every
change is audited. A target in a private, loopback, link-local or otherwise internal network is
refused (server-side request forgery) unless ORDERGATE_WEBHOOK_ALLOWED_NETWORKS lists it; the
sender checks the address again at every delivery (targets.py).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection

from ...domain.access import Principal
from ...domain.ids import new_id
from ...domain.limits import shown
from ...domain.webhooks import EVENT_TYPES
from ...storage import Database, audit, orders
from ...storage import webhooks as store
from ..errors import ErrorKind, FieldViolation, ServiceError
from .targets import Networks, check_target

MAX_ENDPOINTS_PER_CLIENT = 20


def new_secret() -> str:
    """A signing secret as Standard Webhooks writes them: whsec_ and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def create_endpoint(
    db: Database,
    principal: Principal,
    *,
    client: str,
    url: str,
    event_types: Sequence[str],
    description: str,
    allowed: Networks,
) -> tuple[store.Endpoint, str]:
    """A new endpoint and its signing secret (shown this once)."""
    types = _event_types(event_types)
    check_target(url, allowed, resolve=True)
    secret = new_secret()
    now = datetime.now(UTC)
    endpoint_id = new_id()
    with db.transaction() as tx:
        client_id = _client_for_create(tx, principal, client)
        if len(store.list_endpoints(tx, client_id)) >= MAX_ENDPOINTS_PER_CLIENT:
            raise ServiceError(
                ErrorKind.RESOURCE_EXHAUSTED,
                "TOO_MANY_ENDPOINTS",
                f"A client may have at most {MAX_ENDPOINTS_PER_CLIENT} webhook endpoints.",
            )
        store.insert_endpoint(
            tx,
            id=endpoint_id,
            client_id=client_id,
            url=url,
            event_types=types,
            description=description,
            enabled=True,
            disabled_reason="",
            secret=store.seal_secret(tx, secret),
            created_at=now,
            updated_at=now,
        )
        _audit(tx, principal, now, "webhook.create", endpoint_id, after=_shown(url, types))
        endpoint = store.get_endpoint(tx, endpoint_id, None)
    assert endpoint is not None
    return endpoint, secret


def list_endpoints(db: Database, principal: Principal, client: str = "") -> list[store.Endpoint]:
    with db.reader() as conn:
        return store.list_endpoints(conn, _client_scope(conn, principal, client))


def update_endpoint(
    db: Database,
    principal: Principal,
    endpoint_id: str,
    *,
    url: str | None,
    event_types: Sequence[str] | None,
    description: str | None,
    enabled: bool | None,
    allowed: Networks,
) -> store.Endpoint:
    """Change what is given (None: unchanged). Enabling a disabled endpoint resumes its pending
    deliveries where they stopped."""
    with db.reader() as conn:  # another client's endpoint is not found, whatever is asked
        owned_endpoint(conn, principal, endpoint_id)
    if url is not None:  # resolved outside the transaction: a slow DNS holds no lock
        check_target(url, allowed, resolve=True)
    types = _event_types(event_types) if event_types is not None else None
    now = datetime.now(UTC)
    with db.transaction() as tx:
        before = owned_endpoint(tx, principal, endpoint_id)
        values: dict[str, object] = {"updated_at": now}
        if url is not None:
            values["url"] = url
        if types is not None:
            values["event_types"] = types
        if description is not None:
            values["description"] = description
        if enabled is not None:
            values["enabled"] = enabled
            if enabled:
                values.update(disabled_reason="", failing_since=None)
        store.update_endpoint(tx, endpoint_id, **values)
        after = store.get_endpoint(tx, endpoint_id, None)
        assert after is not None
        _audit(
            tx,
            principal,
            now,
            "webhook.update",
            endpoint_id,
            before=_shown(before.url, before.event_types, before.enabled),
            after=_shown(after.url, after.event_types, after.enabled),
        )
    return after


def delete_endpoint(db: Database, principal: Principal, endpoint_id: str) -> None:
    """The endpoint, its deliveries and their attempts are gone (the events stay)."""
    now = datetime.now(UTC)
    with db.transaction() as tx:
        before = owned_endpoint(tx, principal, endpoint_id)
        store.delete_endpoint(tx, endpoint_id)
        _audit(
            tx,
            principal,
            now,
            "webhook.delete",
            endpoint_id,
            before=_shown(before.url, before.event_types),
        )


def rotate_secret(
    db: Database, principal: Principal, endpoint_id: str, overlap: timedelta
) -> tuple[store.Endpoint, str]:
    """A new signing secret (shown this once); for `overlap` deliveries carry a signature with
    the old one too, so the receiver can switch without missing a delivery."""
    secret = new_secret()
    now = datetime.now(UTC)
    with db.transaction() as tx:
        before = owned_endpoint(tx, principal, endpoint_id)
        store.update_endpoint(
            tx,
            endpoint_id,
            secret=store.seal_secret(tx, secret),
            previous_secret=store.seal_secret(tx, before.secret)
            if overlap > timedelta(0)
            else None,
            previous_secret_until=now + overlap if overlap > timedelta(0) else None,
            updated_at=now,
        )
        _audit(
            tx,
            principal,
            now,
            "webhook.rotate_secret",
            endpoint_id,
            after={"overlap_seconds": overlap.total_seconds()},
        )
        endpoint = store.get_endpoint(tx, endpoint_id, None)
    assert endpoint is not None
    return endpoint, secret


def _event_types(given: Sequence[str]) -> list[str]:
    unknown = [name for name in given if name not in EVENT_TYPES]
    if unknown:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "EVENT_TYPE_UNKNOWN",
            f"{shown(unknown[0])} is not an event type (docs/webhooks.md lists them).",
            field_violations=[FieldViolation("event_types", "not an event type")],
            metadata={"event_types": ",".join(EVENT_TYPES)},
        )
    return sorted(set(given))


def _client_for_create(tx: Connection, principal: Principal, client: str) -> int:
    if principal.sees_only_own_client:
        if client and client != principal.client_name:
            raise _other_client()
        return principal.client_id
    if not client:
        raise ServiceError(
            ErrorKind.INVALID_ARGUMENT,
            "CLIENT_MISSING",
            "Name the client whose endpoint this is.",
            field_violations=[FieldViolation("client", "required for an admin key")],
        )
    found = orders.client_id_by_name(tx, client)
    if found is None:
        raise ServiceError(ErrorKind.NOT_FOUND, "CLIENT_NOT_FOUND", f"No client {shown(client)}.")
    return found


def _client_scope(conn: Connection, principal: Principal, client: str) -> int | None:
    if principal.sees_only_own_client:
        if client and client != principal.client_name:
            raise _other_client()
        return principal.client_id
    if not client:
        return None
    found = orders.client_id_by_name(conn, client)
    return found if found is not None else -1


def owned_endpoint(conn: Connection, principal: Principal, endpoint_id: str) -> store.Endpoint:
    """The endpoint, if the caller may see it (its own client's; an admin: any)."""
    own = principal.client_id if principal.sees_only_own_client else None
    found = store.get_endpoint(conn, endpoint_id, own)
    if found is None:
        raise ServiceError(
            ErrorKind.NOT_FOUND,
            "WEBHOOK_ENDPOINT_NOT_FOUND",
            f"No webhook endpoint {shown(endpoint_id)} is visible to this client.",
        )
    return found


def _other_client() -> ServiceError:
    return ServiceError(
        ErrorKind.PERMISSION_DENIED,
        "CLIENT_FILTER_FORBIDDEN",
        "A website key manages only its own client's endpoints.",
        field_violations=[FieldViolation("client", "only your own client name is allowed")],
    )


def _shown(url: str, event_types: list[str], enabled: bool | None = None) -> dict[str, object]:
    shown_values: dict[str, object] = {"url": url, "event_types": event_types}
    if enabled is not None:
        shown_values["enabled"] = enabled
    return shown_values


def _audit(
    tx: Connection,
    principal: Principal,
    now: datetime,
    action: str,
    endpoint_id: str,
    *,
    before: object = None,
    after: object = None,
) -> None:
    audit.record(
        tx,
        [
            audit.AuditEntry(
                at=now,
                actor=principal.client_name,
                role=principal.role.value,
                action=action,
                subject=f"webhook_endpoint/{endpoint_id}",
                reason="",
                before=before,
                after=after,
            )
        ],
    )
