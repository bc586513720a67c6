"""Drop the stock change log's (sku, seq) index: no query reads it, every order paid for it

Each allocated order logs one stock change per SKU, and this index put each of them on a page
of its own SKU's range: a batch of orders dirtied pages all over it, each written to the log at
commit. Without it SQLite wrote 24 KB per stored order instead of 55 KB (bench/README.md).
Watchers read the log by seq (the primary key); manual corrections by request_id. Old replicas
never read it either, so this is safe in the middle of a rolling deploy.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-24
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index(op.f("ix_stock_changes_sku_seq"), table_name="stock_changes")


def downgrade() -> None:
    op.create_index(op.f("ix_stock_changes_sku_seq"), "stock_changes", ["sku", "seq"], unique=False)
