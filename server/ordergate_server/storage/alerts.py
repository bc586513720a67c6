"""Operational alerts (OVERSOLD ...)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Connection, select

from . import tables as t


def raise_alert(
    conn: Connection,
    *,
    at: datetime,
    kind: str,
    message: str,
    order_ids: Sequence[str],
    sku: str | None = None,
    location: str | None = None,
    request_id: str | None = None,
) -> None:
    conn.execute(
        t.alerts.insert().values(
            at=at,
            kind=kind,
            sku=sku,
            location=location,
            message=message,
            order_ids=list(order_ids),
            request_id=request_id,
        )
    )


def order_ids_for_request(conn: Connection, request_id: str) -> list[str]:
    ids: list[str] = []
    for (order_ids,) in conn.execute(
        select(t.alerts.c.order_ids).where(t.alerts.c.request_id == request_id)
    ):
        ids.extend(order_ids)
    return ids
