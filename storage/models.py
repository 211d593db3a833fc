"""SQLModel tables: the durable record of groups, members, messages and membership.

Times are stored as naive UTC on both SQLite and PostgreSQL (through :class:`UTCDateTime`)
and come back timezone-aware, so SQL comparisons behave the same on both databases.
The migrations under ``storage/migrations`` create exactly these tables; a test checks
that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, String, Text, UniqueConstraint
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel


class UTCDateTime(TypeDecorator[datetime]):
    """Store aware datetimes as naive UTC; hand them back aware (UTC)."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; every time must be aware")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite returns text from some expressions
            value = datetime.fromisoformat(value)
        assert isinstance(value, datetime)  # noqa: S101 - the column type guarantees it
        return value.replace(tzinfo=UTC)


def utc_column(*, nullable: bool = False, index: bool = False) -> Any:
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def utc_now() -> datetime:
    return datetime.now(UTC)


class ChatGroup(SQLModel, table=True):
    """A group chat on one platform."""

    __tablename__ = "chat_group"
    __table_args__ = (UniqueConstraint("platform", "chat_id", name="uq_chat_group_platform_chat"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    chat_id: str = Field(max_length=128)
    name: str | None = Field(default=None, max_length=256)
    #: ``at_mentions_only`` or ``full``: how complete this group's message record is.
    source: str = Field(default="at_mentions_only", max_length=32)
    created_at: datetime = utc_column()


class Member(SQLModel, table=True):
    """A person (or bot) on one platform, keyed by the platform's user id."""

    __table_args__ = (UniqueConstraint("platform", "user_id", name="uq_member_platform_user"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    user_id: str = Field(max_length=128)
    display_name: str | None = Field(default=None, max_length=256)
    opted_out: bool = False
    is_bot: bool = False
    #: Since when the member is a paid member (会员), if they are one.
    paid_member_since: datetime | None = utc_column(nullable=True)
    created_at: datetime = utc_column()


class GroupMember(SQLModel, table=True):
    """That a member was seen in a group, and since when (first message, join or roster)."""

    __tablename__ = "group_member"

    group_id: int = Field(foreign_key="chat_group.id", primary_key=True)
    member_id: int = Field(foreign_key="member.id", primary_key=True)
    first_seen_at: datetime = utc_column()


class Message(SQLModel, table=True):
    """One message in a group; the platform's id makes redeliveries harmless."""

    __table_args__ = (
        UniqueConstraint("platform", "platform_msg_id", name="uq_message_platform_msg"),
        Index("ix_message_group_sent", "group_id", "sent_at"),
        Index("ix_message_group_member_sent", "group_id", "member_id", "sent_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    platform_msg_id: str = Field(max_length=128)
    group_id: int = Field(foreign_key="chat_group.id")
    member_id: int = Field(foreign_key="member.id")
    msg_type: str = Field(max_length=32)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    sent_at: datetime = utc_column()
    #: SnowNLP score in [0, 1]; NULL until the background scorer has seen it.
    sentiment: float | None = None
    #: A command addressed to the bot: counted as a message, not in rank or words.
    is_command: bool = False
    #: When the sender recalled (撤回) it; recalled messages count in no metric.
    recalled_at: datetime | None = utc_column(nullable=True)


class MembershipEvent(SQLModel, table=True):
    """A join, leave or removal, as a fact with its time and where it came from."""

    __tablename__ = "membership_event"
    __table_args__ = (
        UniqueConstraint(
            "group_id", "member_id", "event_key", name="uq_membership_event_group_member_key"
        ),
        Index("ix_membership_event_group_time", "group_id", "occurred_at"),
        Index("ix_membership_event_group_member_time", "group_id", "member_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="chat_group.id")
    member_id: int = Field(foreign_key="member.id")
    #: ``join``, ``leave`` (left by themself) or ``removed`` (by an owner or admin).
    kind: str = Field(max_length=16)
    occurred_at: datetime = utc_column()
    #: ``callback``, ``roster`` or ``import``.
    source: str = Field(default="callback", max_length=16)
    event_key: str = Field(max_length=160)


class InboundEvent(SQLModel, table=True):
    """Every platform event already accepted: a redelivery hits the unique key."""

    __tablename__ = "inbound_event"
    __table_args__ = (UniqueConstraint("platform", "event_key", name="uq_inbound_event_key"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    event_key: str = Field(sa_column=Column(String(200), nullable=False))
    bot_id: str = Field(max_length=64)
    received_at: datetime = utc_column()


class Order(SQLModel, table=True):
    """An order imported from the shop system: the source of the business metrics.

    Amounts are integer fen (分), so sums are exact on both databases.
    """

    __tablename__ = "order_record"
    __table_args__ = (
        UniqueConstraint("platform", "order_id", name="uq_order_platform_order"),
        Index("ix_order_member_paid", "member_id", "paid_at"),
        Index("ix_order_paid", "paid_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    order_id: str = Field(max_length=128)
    member_id: int = Field(foreign_key="member.id")
    amount_fen: int
    cost_fen: int | None = None
    #: ``paid``, ``completed``, ``refunded`` or ``cancelled``.
    status: str = Field(max_length=16)
    paid_at: datetime = utc_column()
    imported_at: datetime = utc_column()


class ArchiveCursor(SQLModel, table=True):
    """How far the WeCom session archive (会话内容存档) of one corp has been pulled.

    ``seq`` is the archive's own sequence number of the last record stored; the next
    pull asks for records after it, so a restart resumes where the last one stopped.
    """

    __tablename__ = "archive_cursor"

    corp_id: str = Field(max_length=64, primary_key=True)
    seq: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    updated_at: datetime = utc_column()


class AuditEntry(SQLModel, table=True):
    """One admin action on people's data (forget, opt-out, export, import, retention).

    ``target`` names what was touched (``wecom:alice``, ``wecom:wrkSFfCgAAvip``);
    ``detail`` is a short JSON object with counts and options, never message text.
    """

    __tablename__ = "audit_log"
    __table_args__ = (Index("ix_audit_log_at", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = utc_column()
    action: str = Field(max_length=32)
    target: str = Field(max_length=300)
    detail: str = Field(default="{}", sa_column=Column(Text, nullable=False))


class CommandReply(SQLModel, table=True):
    """A chat command the bot answered (or is answering): one row per command message.

    The unique key on the command's platform message id is what keeps a redelivered or
    raced command from being answered twice, even across processes.
    """

    __tablename__ = "command_reply"
    __table_args__ = (
        UniqueConstraint("platform", "message_id", name="uq_command_reply_platform_message"),
    )

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    message_id: str = Field(max_length=128)
    bot_id: str = Field(max_length=64)
    chat_id: str = Field(max_length=128)
    user_id: str = Field(max_length=128)
    #: The command's canonical name (``stats``, ``rank`` ...), or ``?`` when unknown.
    command: str = Field(max_length=32)
    #: ``pending`` while being answered, then ``sent`` or ``failed``.
    status: str = Field(default="pending", max_length=16)
    #: Where the answer went: ``chat`` (where it was asked), ``private``, or ``none``.
    channel: str = Field(default="none", max_length=16)
    #: Why sending failed (no secrets, no message text).
    error: str | None = Field(default=None, max_length=500)
    created_at: datetime = utc_column()
    answered_at: datetime | None = utc_column(nullable=True)


class DashboardSecret(SQLModel, table=True):
    """A secret the dashboard generated for itself (the signing key when none is configured).

    Kept in the database so that every process of a deployment signs and checks with the
    same key, and sessions survive a restart.
    """

    __tablename__ = "dashboard_secret"

    name: str = Field(max_length=32, primary_key=True)
    value: str = Field(max_length=128)
    created_at: datetime = utc_column()


class DashboardLinkUse(SQLModel, table=True):
    """A dashboard sign-in link that has been used: the primary key makes each link single-use."""

    __tablename__ = "dashboard_link_use"
    __table_args__ = (Index("ix_dashboard_link_use_expires", "expires_at"),)

    nonce: str = Field(max_length=64, primary_key=True)
    used_at: datetime = utc_column()
    #: When the link would have expired anyway; rows past this are deleted.
    expires_at: datetime = utc_column()
