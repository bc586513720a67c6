"""files imported from drop folders

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "imported_files",
        sa.Column("seq", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("content_sha256", sa.String(length=64), nullable=False),
        sa.Column("file_name", sa.String(length=255), nullable=False),
        sa.Column("imported_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("result", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["clients.id"], name=op.f("fk_imported_files_client_id_clients")
        ),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_imported_files")),
        sa.UniqueConstraint(
            "client_id", "content_sha256", name=op.f("uq_imported_files_client_id_content_sha256")
        ),
    )


def downgrade() -> None:
    op.drop_table("imported_files")
