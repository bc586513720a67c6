"""Reading the audit log (managers, admins, operations)."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import datetime

from ..storage import Database, audit
from . import paging
from .orders import decode_page_token, encode_page_token


def list_audit_entries(
    db: Database,
    *,
    order_id: str = "",
    subject: str = "",
    actor: str = "",
    start: datetime | None = None,
    end: datetime | None = None,
    page_size: int = 0,
    page_token: str = "",
    fits: Callable[[tuple[int, audit.AuditEntry]], bool] | None = None,
) -> tuple[list[tuple[int, audit.AuditEntry]], str]:
    """Audit entries, oldest first; `fits` bounds the page in bytes (paging.fitting)."""
    size = paging.page_size(page_size, default=100, maximum=1000)
    query = audit.AuditQuery(
        subject=f"order/{order_id}" if order_id else subject, actor=actor, start=start, end=end
    )
    digest = hashlib.sha256(
        json.dumps([query.subject, actor, str(start), str(end)]).encode()
    ).hexdigest()[:16]
    after = decode_page_token(page_token, digest) if page_token else 0
    with db.reader() as conn:
        found = audit.search(conn, query, after_seq=after, limit=size + 1)
    taken = paging.fitting(found[:size], fits)
    token = encode_page_token(found[taken - 1][0], digest) if len(found) > taken else ""
    return found[:taken], token
