"""Who looked at customers' personal data: staff reads of orders are audited.

A website reading its own orders is the data's owner and is not recorded; any staff role
(admin, manager, warehouse, operations, finance) reading an order — which carries the delivery
name, address, phone and e-mail — leaves one `pii.read` audit entry per order, naming the caller
and the RPC, found with ListAuditEntries(order_id=...) like any change to the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from ..domain.access import Principal
from ..domain.records import OrderRecord
from ..storage import Database, audit


def record_staff_reads(
    db: Database, principal: Principal, read: Sequence[OrderRecord], via: str
) -> None:
    if principal.sees_only_own_client or not read:
        return
    now = datetime.now(UTC)
    with db.transaction() as tx:
        audit.record(
            tx,
            [
                audit.AuditEntry(
                    at=now,
                    actor=principal.client_name,
                    role=principal.role.value,
                    action="pii.read",
                    subject=f"order/{order.id}",
                    reason=via,
                )
                for order in read
            ],
        )
