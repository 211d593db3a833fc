"""group changes, roster sync state, platform notices, WeCom daily group statistics

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "group_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=True),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("event_key", sa.String(length=160), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["chat_group.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("group_id", "event_key", name="uq_group_change_group_key"),
    )
    with op.batch_alter_table("group_change", schema=None) as batch_op:
        batch_op.create_index(
            "ix_group_change_group_time", ["group_id", "occurred_at"], unique=False
        )
    op.create_table(
        "group_sync_state",
        sa.Column("group_id", sa.Integer(), nullable=False),
        sa.Column("member_version", sa.String(length=128), nullable=True),
        sa.Column("resync_needed", sa.Boolean(), nullable=False),
        sa.Column("resync_reason", sa.String(length=256), nullable=True),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["group_id"], ["chat_group.id"]),
        sa.PrimaryKeyConstraint("group_id"),
    )
    op.create_table(
        "platform_notice",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("platform", sa.String(length=16), nullable=False),
        sa.Column("bot_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("occurred_at", sa.DateTime(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("handled_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("platform_notice", schema=None) as batch_op:
        batch_op.create_index(
            "ix_platform_notice_kind_handled", ["kind", "handled_at"], unique=False
        )
    op.create_table(
        "wecom_group_daily_stat",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("bot_id", sa.String(length=64), nullable=False),
        sa.Column("owner", sa.String(length=128), nullable=False),
        sa.Column("day", sa.DateTime(), nullable=False),
        sa.Column("new_chat_cnt", sa.Integer(), nullable=False),
        sa.Column("chat_total", sa.Integer(), nullable=False),
        sa.Column("chat_has_msg", sa.Integer(), nullable=False),
        sa.Column("new_member_cnt", sa.Integer(), nullable=False),
        sa.Column("member_total", sa.Integer(), nullable=False),
        sa.Column("member_has_msg", sa.Integer(), nullable=False),
        sa.Column("msg_total", sa.Integer(), nullable=False),
        sa.Column("migrate_trainee_chat_cnt", sa.Integer(), nullable=False),
        sa.Column("fetched_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("bot_id", "owner", "day", name="uq_wecom_group_daily_stat"),
    )


def downgrade() -> None:
    op.drop_table("wecom_group_daily_stat")
    with op.batch_alter_table("platform_notice", schema=None) as batch_op:
        batch_op.drop_index("ix_platform_notice_kind_handled")
    op.drop_table("platform_notice")
    op.drop_table("group_sync_state")
    with op.batch_alter_table("group_change", schema=None) as batch_op:
        batch_op.drop_index("ix_group_change_group_time")
    op.drop_table("group_change")
