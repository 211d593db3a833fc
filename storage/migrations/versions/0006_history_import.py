"""history import and WeCom archive: message.recalled_at, archive_cursor

Revision ID: 0006
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recalled_at", sa.DateTime(), nullable=True))
    op.create_table(
        "archive_cursor",
        sa.Column("corp_id", sa.String(length=64), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("corp_id"),
    )


def downgrade() -> None:
    op.drop_table("archive_cursor")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_column("recalled_at")
