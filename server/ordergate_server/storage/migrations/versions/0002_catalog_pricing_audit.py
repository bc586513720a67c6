"""catalog sync, pricing, bundles and the audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("products") as batch:
        batch.add_column(sa.Column("list_price", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("list_currency", sa.String(length=3), nullable=True))
    with op.batch_alter_table("customers") as batch:
        batch.add_column(sa.Column("client_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("price_list", sa.String(length=64), nullable=True))
        batch.create_foreign_key(
            batch.f("fk_customers_client_id_clients"), "clients", ["client_id"], ["id"]
        )
        batch.create_index(batch.f("ix_customers_client_id"), ["client_id"], unique=False)
    op.create_table(
        "bundle_components",
        sa.Column("bundle_sku", sa.String(length=64), nullable=False),
        sa.Column("component_sku", sa.String(length=64), nullable=False),
        sa.Column("quantity", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["bundle_sku"], ["products.sku"], name=op.f("fk_bundle_components_bundle_sku_products")
        ),
        sa.ForeignKeyConstraint(
            ["component_sku"],
            ["products.sku"],
            name=op.f("fk_bundle_components_component_sku_products"),
        ),
        sa.PrimaryKeyConstraint("bundle_sku", "component_sku", name=op.f("pk_bundle_components")),
    )
    op.create_table(
        "price_lists",
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_price_lists")),
    )
    op.create_table(
        "price_list_entries",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("price_list", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("min_quantity", sa.Integer(), nullable=False),
        sa.Column("unit_price", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["price_list"],
            ["price_lists.code"],
            name=op.f("fk_price_list_entries_price_list_price_lists"),
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["products.sku"], name=op.f("fk_price_list_entries_sku_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_price_list_entries")),
        sa.UniqueConstraint(
            "price_list",
            "sku",
            "min_quantity",
            "valid_from",
            name=op.f("uq_price_list_entries_price_list_sku_min_quantity_valid_from"),
        ),
    )
    op.create_table(
        "contract_prices",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("customer", sa.String(length=64), nullable=False),
        sa.Column("sku", sa.String(length=64), nullable=False),
        sa.Column("unit_price", sa.String(length=32), nullable=False),
        sa.Column("valid_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer"],
            ["customers.account"],
            name=op.f("fk_contract_prices_customer_customers"),
        ),
        sa.ForeignKeyConstraint(
            ["sku"], ["products.sku"], name=op.f("fk_contract_prices_sku_products")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contract_prices")),
        sa.UniqueConstraint(
            "customer", "sku", "valid_from", name=op.f("uq_contract_prices_customer_sku_valid_from")
        ),
    )
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("customer", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount", sa.String(length=32), nullable=False),
        sa.Column("remaining", sa.String(length=32), nullable=False),
        sa.Column("issued_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["customer"], ["customers.account"], name=op.f("fk_credit_notes_customer_customers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_credit_notes")),
    )
    op.create_index(op.f("ix_credit_notes_customer"), "credit_notes", ["customer"], unique=False)
    op.create_table(
        "audit_entries",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor", sa.String(length=100), nullable=False),
        sa.Column("role", sa.String(length=20), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_entries")),
    )
    op.create_index(
        op.f("ix_audit_entries_subject_seq"), "audit_entries", ["subject", "seq"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_entries_subject_seq"), table_name="audit_entries")
    op.drop_table("audit_entries")
    op.drop_index(op.f("ix_credit_notes_customer"), table_name="credit_notes")
    op.drop_table("credit_notes")
    op.drop_table("contract_prices")
    op.drop_table("price_list_entries")
    op.drop_table("price_lists")
    op.drop_table("bundle_components")
    with op.batch_alter_table("customers") as batch:
        batch.drop_index(batch.f("ix_customers_client_id"))
        batch.drop_constraint(batch.f("fk_customers_client_id_clients"), type_="foreignkey")
        batch.drop_column("price_list")
        batch.drop_column("client_id")
    with op.batch_alter_table("products") as batch:
        batch.drop_column("list_currency")
        batch.drop_column("list_price")
