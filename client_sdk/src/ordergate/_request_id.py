"""Deterministic request ids: the same order from the same client always gets the same one."""

from __future__ import annotations

import hashlib
import re
import uuid

# Fixed forever: changing it would change every derived request_id.
_NAMESPACE = uuid.UUID("6f1c2a7e-4b1d-5c3e-9a8f-0d2b7e5c4a19")
# The order id of a native order (<OrderId>) or of a UBL order (the first <cbc:ID>).
_ORDER_ID = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?(?:OrderId|ID)>\s*([^<]{1,64}?)\s*</")


def order_id_of(payload: bytes) -> str:
    """The order id written in an order document, or "" (a quick scan, not a parse)."""
    match = _ORDER_ID.search(payload)
    return match.group(1).decode("utf-8", errors="replace") if match else ""


def derive_request_id(client_identity: str, payload: bytes) -> str:
    """A UUID (version 5) from the client, the order id and the exact payload bytes.

    A retry — after a timeout, a crash, or from another process with the same key — sends the
    same request_id, so the server answers with the order it already made. Different bytes give
    a different id; to re-run an identical document on purpose, pass an explicit request_id.
    """
    digest = hashlib.sha256(payload).hexdigest()
    name = f"{client_identity}\n{order_id_of(payload)}\n{digest}"
    return str(uuid.uuid5(_NAMESPACE, name))


def identity_of_key(api_key: str) -> str:
    """The public part of an Ordergate key (og_<id>_<secret> -> <id>), never the secret."""
    prefix, _, rest = api_key.partition("_")
    key_id, _, _ = rest.partition("_")
    if prefix == "og" and key_id:
        return key_id
    return hashlib.sha256(api_key.encode()).hexdigest()[:16]
