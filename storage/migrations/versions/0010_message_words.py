"""each message's words, segmented once in the background

Revision ID: 0010
Revises: 0008
Create Date: 2026-11-25

The background scorer segments every text with jieba as it scores it and keeps the words
(space-separated, before stop words are taken out) in ``message.words``; top words and
topics then count stored words instead of loading jieba's dictionary (about half a
second) and segmenting a period's texts on every ``stats``, digest or dashboard page.
NULL means "not segmented yet": readers segment those texts themselves.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN on both databases: no table rewrite, however many messages.
    op.add_column("message", sa.Column("words", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("message") as batch:  # SQLite before 3.35 has no DROP COLUMN
        batch.drop_column("words")
