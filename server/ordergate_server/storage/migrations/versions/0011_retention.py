"""Retention: how far `ordergate prune` has gone, and webhook deliveries by age

- retention_cursors: per final order state, orders last changed up to this time are pruned.
- webhook_deliveries: an index by created_at (finished deliveries are pruned by age).
- orders: an index by (client_id, seq): a website's ListOrders read every order of its client
  and sorted them, growing with history; by (created_at, seq) and (source, seq), the other
  ListOrders filters that scanned the table (tests/integration/test_query_plans.py).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "retention_cursors",
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("pruned_until", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("state", name="pk_retention_cursors"),
    )
    op.create_index("ix_webhook_deliveries_created_at", "webhook_deliveries", ["created_at"])
    op.create_index("ix_orders_client_id_seq", "orders", ["client_id", "seq"])
    op.create_index("ix_orders_created_at_seq", "orders", ["created_at", "seq"])
    op.create_index("ix_orders_source_seq", "orders", ["source", "seq"])


def downgrade() -> None:
    op.drop_index("ix_orders_source_seq", "orders")
    op.drop_index("ix_orders_created_at_seq", "orders")
    op.drop_index("ix_orders_client_id_seq", "orders")
    op.drop_index("ix_webhook_deliveries_created_at", "webhook_deliveries")
    op.drop_table("retention_cursors")
