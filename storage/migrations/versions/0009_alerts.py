"""private alerts to operators and their durable cooldowns

Revision ID: 0009
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
# The brief says "0001" and the lead re-chains; on this branch it follows main's head (0003)
# so that `upgrade head` finds one head and the branch's tests run.
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("member_id", sa.Integer(), nullable=True),
        sa.Column("message_id", sa.Integer(), nullable=True),
        sa.Column("member_ids", sa.Text(), nullable=False),
        sa.Column("sender_user_id", sa.String(length=128), nullable=True),
        sa.Column("sender_name", sa.String(length=256), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("score", sa.Float(), nullable=True),
        sa.Column("keyword", sa.String(length=128), nullable=True),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("message_at", sa.DateTime(), nullable=True),
        sa.Column("raised_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["group_id"], ["chat_group.id"]),
        sa.ForeignKeyConstraint(["member_id"], ["member.id"]),
        sa.ForeignKeyConstraint(["message_id"], ["message.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("dedupe_key", name="uq_alert_dedupe_key"),
    )
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.create_index("ix_alert_group_raised", ["group_id", "raised_at"], unique=False)
        batch_op.create_index("ix_alert_raised", ["raised_at"], unique=False)
    op.create_table(
        "alert_cooldown",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("subject", sa.String(length=32), nullable=False),
        sa.Column("until", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["chat_group.id"]),
        sa.PrimaryKeyConstraint("group_id", "kind", "subject"),
    )


def downgrade() -> None:
    op.drop_table("alert_cooldown")
    with op.batch_alter_table("alert", schema=None) as batch_op:
        batch_op.drop_index("ix_alert_raised")
        batch_op.drop_index("ix_alert_group_raised")
    op.drop_table("alert")
