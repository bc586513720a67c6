"""Goods coming in: purchase orders and receipts, returns, stock buckets, reconciliations

- stock: quarantine (on hand that must not be sold), on_order and next_expected (open purchase
  order lines). on_hand stays the sellable pieces, so available is still on_hand - allocated.
- stock_changes: quarantine_delta and quarantine_after.
- purchase_orders, purchase_order_lines, receipts, receipt_lines, purchase_order_variances.
- returns, return_lines.
- reconciliations, reconciliation_lines; alerts get an index by (kind, location), for the
  divergence counts of the metrics.

Existing data: every stock record gets quarantine 0 and nothing on order.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    when = sa.DateTime(timezone=True)
    with op.batch_alter_table("stock") as batch:
        batch.alter_column("on_hand", existing_type=sa.Integer(), server_default="0")
        batch.add_column(sa.Column("quarantine", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("on_order", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("next_expected", sa.String(10), nullable=True))
    with op.batch_alter_table("stock_changes") as batch:
        batch.add_column(
            sa.Column("quarantine_delta", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(
            sa.Column("quarantine_after", sa.Integer(), nullable=False, server_default="0")
        )

    op.create_index("ix_alerts_kind_location", "alerts", ["kind", "location"])
    op.create_table(
        "purchase_orders",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("po_number", sa.String(64), nullable=False),
        sa.Column("supplier", sa.String(200), nullable=False),
        sa.Column(
            "location",
            sa.String(64),
            sa.ForeignKey("locations.code", name="fk_purchase_orders_location_locations"),
            nullable=False,
        ),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("close_reason", sa.Text(), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_purchase_orders"),
        sa.UniqueConstraint("po_number", name="uq_purchase_orders_po_number"),
    )
    op.create_index("ix_purchase_orders_state_seq", "purchase_orders", ["state", "seq"])
    op.create_table(
        "purchase_order_lines",
        sa.Column(
            "po_seq",
            sa.Integer(),
            sa.ForeignKey(
                "purchase_orders.seq", name="fk_purchase_order_lines_po_seq_purchase_orders"
            ),
            nullable=False,
        ),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column(
            "sku",
            sa.String(64),
            sa.ForeignKey("products.sku", name="fk_purchase_order_lines_sku_products"),
            nullable=False,
        ),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("expected_date", sa.String(10), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("damaged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("po_seq", "line_number", name="pk_purchase_order_lines"),
    )
    op.create_index("ix_purchase_order_lines_sku", "purchase_order_lines", ["sku"])
    op.create_table(
        "receipts",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "po_seq",
            sa.Integer(),
            sa.ForeignKey("purchase_orders.seq", name="fk_receipts_po_seq_purchase_orders"),
            nullable=False,
        ),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("received_at", when, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_receipts"),
        sa.UniqueConstraint("id", name="uq_receipts_id"),
        sa.UniqueConstraint("request_id", name="uq_receipts_request_id"),
    )
    op.create_index("ix_receipts_po_seq", "receipts", ["po_seq"])
    op.create_table(
        "receipt_lines",
        sa.Column(
            "receipt_seq",
            sa.Integer(),
            sa.ForeignKey("receipts.seq", name="fk_receipt_lines_receipt_seq_receipts"),
            nullable=False,
        ),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("damaged", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("receipt_seq", "line_number", name="pk_receipt_lines"),
    )
    op.create_table(
        "purchase_order_variances",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column(
            "po_seq",
            sa.Integer(),
            sa.ForeignKey(
                "purchase_orders.seq", name="fk_purchase_order_variances_po_seq_purchase_orders"
            ),
            nullable=False,
        ),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("receipt_id", sa.String(36), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_purchase_order_variances"),
    )
    op.create_index("ix_purchase_order_variances_po_seq", "purchase_order_variances", ["po_seq"])
    op.create_table(
        "returns",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column(
            "client_id",
            sa.Integer(),
            sa.ForeignKey("clients.id", name="fk_returns_client_id_clients"),
            nullable=False,
        ),
        sa.Column("rma_id", sa.String(64), nullable=False),
        sa.Column(
            "order_seq",
            sa.Integer(),
            sa.ForeignKey("orders.seq", name="fk_returns_order_seq_orders"),
            nullable=False,
        ),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("location", sa.String(64), nullable=True),
        sa.Column("created_at", when, nullable=False),
        sa.Column("updated_at", when, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("content_sha256", sa.String(64), nullable=False),
        sa.Column("credit_note_id", sa.String(64), nullable=True),
        sa.PrimaryKeyConstraint("seq", name="pk_returns"),
        sa.UniqueConstraint("id", name="uq_returns_id"),
        sa.UniqueConstraint("client_id", "rma_id", name="uq_returns_client_id_rma_id"),
    )
    op.create_index("ix_returns_order_seq", "returns", ["order_seq"])
    op.create_index("ix_returns_rma_id", "returns", ["rma_id"])
    op.create_index("ix_returns_state_seq", "returns", ["state", "seq"])
    op.create_table(
        "return_lines",
        sa.Column(
            "return_seq",
            sa.Integer(),
            sa.ForeignKey("returns.seq", name="fk_return_lines_return_seq_returns"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("line_number", sa.Integer(), nullable=False),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.Column("received", sa.Integer(), nullable=False),
        sa.Column("rework", sa.Integer(), nullable=False),
        sa.Column("restocked", sa.Integer(), nullable=False),
        sa.Column("disposed", sa.Integer(), nullable=False),
        sa.Column("not_credited", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("return_seq", "position", name="pk_return_lines"),
    )
    op.create_table(
        "reconciliations",
        sa.Column("seq", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("at", when, nullable=False),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("threshold_percent", sa.String(16), nullable=False),
        sa.Column("compared", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq", name="pk_reconciliations"),
        sa.UniqueConstraint("id", name="uq_reconciliations_id"),
        sa.UniqueConstraint("request_id", name="uq_reconciliations_request_id"),
    )
    op.create_table(
        "reconciliation_lines",
        sa.Column(
            "reconciliation_seq",
            sa.Integer(),
            sa.ForeignKey(
                "reconciliations.seq",
                name="fk_reconciliation_lines_reconciliation_seq_reconciliations",
            ),
            nullable=False,
        ),
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("location", sa.String(64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("ours", sa.Integer(), nullable=False),
        sa.Column("theirs", sa.Integer(), nullable=False),
        sa.Column("diverged", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint(
            "reconciliation_seq", "sku", "location", name="pk_reconciliation_lines"
        ),
    )


def downgrade() -> None:
    for table in (
        "reconciliation_lines",
        "reconciliations",
        "return_lines",
        "returns",
        "purchase_order_variances",
        "receipt_lines",
        "receipts",
        "purchase_order_lines",
        "purchase_orders",
    ):
        op.drop_table(table)
    op.drop_index("ix_alerts_kind_location", "alerts")
    with op.batch_alter_table("stock_changes") as batch:
        batch.drop_column("quarantine_after")
        batch.drop_column("quarantine_delta")
    with op.batch_alter_table("stock") as batch:
        batch.drop_column("next_expected")
        batch.drop_column("on_order")
        batch.drop_column("quarantine")
        batch.alter_column("on_hand", existing_type=sa.Integer(), server_default=None)
