"""dashboard: generated signing key and used sign-in links

Revision ID: 0008
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
# Chained after the head on main (0001 -> 0006 -> 0007 -> 0005) so `upgrade head` has one head.
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dashboard_secret",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.create_table(
        "dashboard_link_use",
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("used_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("nonce"),
    )
    with op.batch_alter_table("dashboard_link_use", schema=None) as batch_op:
        batch_op.create_index("ix_dashboard_link_use_expires", ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_link_use", schema=None) as batch_op:
        batch_op.drop_index("ix_dashboard_link_use_expires")
    op.drop_table("dashboard_link_use")
    op.drop_table("dashboard_secret")
