"""API key lifecycle: expiry, IP allowlist, rotation

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("allowed_cidrs", sa.JSON(), nullable=False, server_default="[]"))
        batch.add_column(sa.Column("replaced_by", sa.String(length=32), nullable=True))
    with op.batch_alter_table("api_keys") as batch:
        batch.alter_column("allowed_cidrs", server_default=None)


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch:
        batch.drop_column("replaced_by")
        batch.drop_column("allowed_cidrs")
        batch.drop_column("expires_at")
