"""Integrators: storefront keys, webhooks, polling by update time

- api_keys.role: a role narrower than the key's client's (a website client's storefront keys);
  NULL, as for every existing key: the client's.
- orders (updated_at, seq): ListOrders by update time, for clients that poll.
- webhook_endpoints, webhook_events, webhook_deliveries, webhook_attempts: webhooks, with the
  events as sent, one delivery per event and endpoint, and every attempt.
- webhook_cursors: how far the fan-out has read the order events, the stock changes and the
  alerts. They start at the logs' ends: webhooks begin with what happens after the upgrade.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("role", sa.String(20), nullable=True))
    op.create_index("ix_orders_updated_at_seq", "orders", ["updated_at", "seq"])

    when = sa.DateTime(timezone=True)
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("url", sa.String(2000), nullable=False),
        sa.Column("event_types", sa.JSON, nullable=False),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("disabled_reason", sa.Text, nullable=False),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("previous_secret", sa.Text, nullable=True),
        sa.Column("previous_secret_until", when, nullable=True),
        sa.Column("failing_since", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
    )
    op.create_index("ix_webhook_endpoints_client_id", "webhook_endpoints", ["client_id"])
    op.create_table(
        "webhook_events",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(40), nullable=False, unique=True),
        sa.Column("type", sa.String(40), nullable=False),
        sa.Column("client_id", sa.Integer, sa.ForeignKey("clients.id"), nullable=True),
        sa.Column("occurred_at", when, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_webhook_events_occurred_at", "webhook_events", ["occurred_at"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("event_seq", sa.Integer, sa.ForeignKey("webhook_events.seq"), nullable=False),
        sa.Column(
            "endpoint_id", sa.String(36), sa.ForeignKey("webhook_endpoints.id"), nullable=False
        ),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", when, nullable=True),
        sa.Column("lease_until", when, nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("delivered_at", when, nullable=True),
    )
    op.create_index(
        "ix_webhook_deliveries_state_next_attempt_at",
        "webhook_deliveries",
        ["state", "next_attempt_at"],
    )
    op.create_index(
        "ix_webhook_deliveries_endpoint_id_created_at",
        "webhook_deliveries",
        ["endpoint_id", "created_at"],
    )
    op.create_index("ix_webhook_deliveries_event_seq", "webhook_deliveries", ["event_seq"])
    op.create_table(
        "webhook_attempts",
        sa.Column(
            "delivery_id",
            sa.String(36),
            sa.ForeignKey("webhook_deliveries.id"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("at", when, nullable=False),
        sa.Column("status_code", sa.Integer, nullable=True),
        sa.Column("latency_ms", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=False),
    )
    cursors = op.create_table(
        "webhook_cursors",
        sa.Column("log", sa.String(20), primary_key=True),
        sa.Column("after_seq", sa.Integer, nullable=False),
    )
    connection = op.get_bind()
    ends = {
        log: connection.execute(sa.text(f"SELECT COALESCE(MAX(seq), 0) FROM {log}")).scalar_one()
        for log in ("order_events", "stock_changes", "alerts")
    }
    op.bulk_insert(cursors, [{"log": log, "after_seq": end} for log, end in ends.items()])


def downgrade() -> None:
    for table in (
        "webhook_cursors",
        "webhook_attempts",
        "webhook_deliveries",
        "webhook_events",
        "webhook_endpoints",
    ):
        op.drop_table(table)
    op.drop_index("ix_orders_updated_at_seq", "orders")
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("role")
