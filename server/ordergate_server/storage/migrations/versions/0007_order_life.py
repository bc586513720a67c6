"""An order's life after intake: identity per buyer, holds by code, stock holds, line cancels,
shipments, sources and channels

- orders: the identity becomes (client, order id, buyer): the unique key gains customer_account,
  which is NULL when no buyer could be read (such an order never replaces another). New
  columns: source, entered_by (manual orders), stock_hold (re-checked when stock rises),
  held_from (a manual hold's way back).
- order_holds: the hold codes of each held order (filters and queue counts without JSON).
- order_lines: cancelled_quantity, shipped_quantity.
- shipments, shipment_lines: what was handed to a carrier.
- submissions.channel: how each document was received; an index by order (GetOrderDocument).
- stock_rises: SKUs whose available stock rose since the stock re-check last looked.

Existing data: '' buyers become NULL; held orders get their order_holds rows, and those held
only for stock are marked stock_hold (and re-checked at the next stock rise of their SKUs).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04
"""

import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STOCK_CODES = {"INSUFFICIENT_STOCK", "STOCK_SHORT"}


def upgrade() -> None:
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("customer_account", existing_type=sa.String(64), nullable=True)
        batch.add_column(sa.Column("source", sa.String(16), nullable=False, server_default="API"))
        batch.add_column(sa.Column("entered_by", sa.String(100), nullable=True))
        batch.add_column(
            sa.Column("stock_hold", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("held_from", sa.String(20), nullable=True))
        batch.drop_constraint("uq_orders_client_id_client_order_id", type_="unique")
        batch.create_unique_constraint(
            "uq_orders_client_id_client_order_id_customer_account",
            ["client_id", "client_order_id", "customer_account"],
        )
        batch.create_index("ix_orders_stock_hold_seq", ["stock_hold", "seq"])
    with op.batch_alter_table("orders") as batch:
        batch.alter_column("source", server_default=None)
        batch.alter_column("stock_hold", server_default=None)

    op.create_table(
        "order_holds",
        sa.Column("order_seq", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["order_seq"], ["orders.seq"], name="fk_order_holds_order_seq_orders"
        ),
        sa.PrimaryKeyConstraint("order_seq", "code", name="pk_order_holds"),
    )
    op.create_index("ix_order_holds_code_order_seq", "order_holds", ["code", "order_seq"])

    with op.batch_alter_table("order_lines") as batch:
        for name in ("cancelled_quantity", "shipped_quantity"):
            batch.add_column(sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
    with op.batch_alter_table("order_lines") as batch:
        for name in ("cancelled_quantity", "shipped_quantity"):
            batch.alter_column(name, server_default=None)

    op.create_table(
        "shipments",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("id", sa.String(36), nullable=False),
        sa.Column("order_seq", sa.Integer(), nullable=False),
        sa.Column("carrier", sa.String(100), nullable=False),
        sa.Column("tracking_number", sa.String(100), nullable=True),
        sa.Column("tracking_url", sa.String(500), nullable=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("without_tracking", sa.Boolean(), nullable=False),
        sa.Column("tracking_alerted", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.ForeignKeyConstraint(
            ["order_seq"], ["orders.seq"], name="fk_shipments_order_seq_orders"
        ),
        sa.PrimaryKeyConstraint("seq", name="pk_shipments"),
        sa.UniqueConstraint("id", name="uq_shipments_id"),
        sa.UniqueConstraint("request_id", name="uq_shipments_request_id"),
    )
    op.create_index("ix_shipments_order_seq", "shipments", ["order_seq"])
    op.create_table(
        "shipment_lines",
        sa.Column("shipment_seq", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["shipment_seq"], ["shipments.seq"], name="fk_shipment_lines_shipment_seq_shipments"
        ),
        sa.PrimaryKeyConstraint("shipment_seq", "position", name="pk_shipment_lines"),
    )

    with op.batch_alter_table("submissions") as batch:
        batch.add_column(sa.Column("channel", sa.String(16), nullable=False, server_default="GRPC"))
    with op.batch_alter_table("submissions") as batch:
        batch.alter_column("channel", server_default=None)
    op.create_index("ix_submissions_order_id", "submissions", ["order_id"])

    op.create_table(
        "stock_rises",
        sa.Column("sku", sa.String(64), nullable=False),
        sa.Column("rose_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cause", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("sku", name="pk_stock_rises"),
    )

    _migrate_data()


def _migrate_data() -> None:
    conn = op.get_bind()
    orders = sa.table(
        "orders",
        sa.column("seq", sa.Integer()),
        sa.column("state", sa.String()),
        sa.column("customer_account", sa.String()),
        sa.column("hold_reasons", sa.JSON()),
        sa.column("stock_hold", sa.Boolean()),
    )
    holds = sa.table("order_holds", sa.column("order_seq", sa.Integer()), sa.column("code"))
    conn.execute(
        orders.update().where(orders.c.customer_account == "").values(customer_account=None)
    )
    rows = conn.execute(
        sa.select(orders.c.seq, orders.c.hold_reasons).where(orders.c.state == "ON_HOLD")
    )
    codes: list[dict[str, Any]] = []
    stock_only: list[int] = []
    for seq, reasons in rows:
        if isinstance(reasons, str):  # SQLite's JSON comes back as text through sa.table
            reasons = json.loads(reasons)
        found = {reason["code"] for reason in reasons}
        codes += [{"order_seq": seq, "code": code} for code in sorted(found)]
        if found and found <= STOCK_CODES:
            stock_only.append(seq)
    if codes:
        conn.execute(holds.insert(), codes)
    if stock_only:
        conn.execute(orders.update().where(orders.c.seq.in_(stock_only)).values(stock_hold=True))


def downgrade() -> None:
    op.drop_table("stock_rises")
    op.drop_index("ix_submissions_order_id", table_name="submissions")
    with op.batch_alter_table("submissions") as batch:
        batch.drop_column("channel")
    op.drop_table("shipment_lines")
    op.drop_index("ix_shipments_order_seq", table_name="shipments")
    op.drop_table("shipments")
    with op.batch_alter_table("order_lines") as batch:
        batch.drop_column("shipped_quantity")
        batch.drop_column("cancelled_quantity")
    op.drop_index("ix_order_holds_code_order_seq", table_name="order_holds")
    op.drop_table("order_holds")
    conn = op.get_bind()
    conn.execute(sa.text("UPDATE orders SET customer_account = '' WHERE customer_account IS NULL"))
    with op.batch_alter_table("orders") as batch:
        batch.drop_index("ix_orders_stock_hold_seq")
        batch.drop_constraint("uq_orders_client_id_client_order_id_customer_account", "unique")
        batch.create_unique_constraint(
            "uq_orders_client_id_client_order_id", ["client_id", "client_order_id"]
        )
        batch.drop_column("held_from")
        batch.drop_column("stock_hold")
        batch.drop_column("entered_by")
        batch.drop_column("source")
        batch.alter_column("customer_account", existing_type=sa.String(64), nullable=False)
