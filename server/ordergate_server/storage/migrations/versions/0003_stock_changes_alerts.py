"""stock change log, alerts, renamed SKUs

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("product_codes") as batch:
        batch.add_column(sa.Column("valid_until", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "stock_changes",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("on_hand_delta", sa.Integer(), nullable=False),
        sa.Column("allocated_delta", sa.Integer(), nullable=False),
        sa.Column("on_hand_after", sa.Integer(), nullable=False),
        sa.Column("allocated_after", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("order_id", sa.String(length=36), nullable=True),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_stock_changes")),
        sa.UniqueConstraint("request_id", name=op.f("uq_stock_changes_request_id")),
    )
    op.create_index(op.f("ix_stock_changes_sku_seq"), "stock_changes", ["sku", "seq"], unique=False)
    op.create_table(
        "alerts",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=True),
        sa.Column("location", sa.String(length=64), nullable=True),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("order_ids", sa.JSON(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_alerts")),
    )
    op.create_index(op.f("ix_alerts_request_id"), "alerts", ["request_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_alerts_request_id"), table_name="alerts")
    op.drop_table("alerts")
    op.drop_index(op.f("ix_stock_changes_sku_seq"), table_name="stock_changes")
    op.drop_table("stock_changes")
    with op.batch_alter_table("product_codes") as batch:
        batch.drop_column("valid_until")
