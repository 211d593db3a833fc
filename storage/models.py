"""SQLModel tables: the durable record of groups, members, messages and membership.

Times are stored as naive UTC on both SQLite and PostgreSQL (through :class:`UTCDateTime`)
and come back timezone-aware, so SQL comparisons behave the same on both databases.
The migrations under ``storage/migrations`` create exactly these tables; a test checks
that the two agree.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Index, String, Text, UniqueConstraint, text
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

    __table_args__ = (
        UniqueConstraint("platform", "user_id", name="uq_member_platform_user"),
        # Metrics keep bots out with ``member_id NOT IN (bots)``: the bots alone (0011).
        Index(
            "ix_member_bots",
            "id",
            sqlite_where=text("is_bot IS 1"),
            postgresql_where=text("is_bot IS true"),
        ),
    )

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
        Index("ix_message_group_member_sent", "group_id", "member_id", "sent_at"),
        # Covers every period aggregate, so they never read table rows (migration 0003);
        # it starts with (group_id, sent_at), so it also serves range scans by time.
        Index(
            "ix_message_group_sent_cover",
            "group_id",
            "sent_at",
            "member_id",
            "is_command",
            "sentiment",
            "recalled_at",
        ),
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
    #: The text's words as jieba cuts them (space-separated, stop words still in), stored
    #: by the background scorer; NULL until it has seen the message. Last, as migration
    #: 0010 added it: a database created from these models has the migrated column order.
    words: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


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


class GroupChange(SQLModel, table=True):
    """A group created, renamed or disbanded, as the platform reported it."""

    __tablename__ = "group_change"
    __table_args__ = (
        UniqueConstraint("group_id", "event_key", name="uq_group_change_group_key"),
        Index("ix_group_change_group_time", "group_id", "occurred_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="chat_group.id")
    #: ``created``, ``renamed`` or ``disbanded``.
    kind: str = Field(max_length=16)
    #: The new name of a ``renamed`` change, when the platform sent it.
    name: str | None = Field(default=None, max_length=256)
    occurred_at: datetime = utc_column()
    event_key: str = Field(max_length=160)


class GroupSyncState(SQLModel, table=True):
    """Per group: the last roster version seen and whether the roster must be re-synced.

    ``resync_needed`` is set when a membership event reveals a lost event (a roster
    version gap) or a change whose details the callback does not carry (a rename
    without the name); ``qunpulse roster sync`` clears it.
    """

    __tablename__ = "group_sync_state"

    group_id: int = Field(foreign_key="chat_group.id", primary_key=True)
    member_version: str | None = Field(default=None, max_length=128)
    resync_needed: bool = False
    resync_reason: str | None = Field(default=None, max_length=256)
    updated_at: datetime = utc_column()


class PlatformNotice(SQLModel, table=True):
    """A durable to-do from a platform, e.g. ``archive_ready`` (WeCom msgaudit_notify).

    The consumer (``qunpulse archive pull``) sets ``handled_at``; unhandled rows are
    the backlog.
    """

    __tablename__ = "platform_notice"
    __table_args__ = (Index("ix_platform_notice_kind_handled", "kind", "handled_at"),)

    id: int | None = Field(default=None, primary_key=True)
    platform: str = Field(max_length=16)
    bot_id: str = Field(max_length=64)
    kind: str = Field(max_length=32)
    occurred_at: datetime = utc_column()
    received_at: datetime = utc_column()
    handled_at: datetime | None = utc_column(nullable=True)


class WecomGroupDailyStat(SQLModel, table=True):
    """WeCom's own daily customer-group statistics for one group owner (群主), one day.

    A separate, labelled source: WeCom counts every message of the owner's customer
    groups (not only @-mentions), but only as totals per owner and day, never per member
    or per group. Fetched from ``externalcontact/groupchat/statistic_group_by_day``; WeCom
    keeps 180 days. ``day`` is the local midnight WeCom reports as ``stat_time``.
    """

    __tablename__ = "wecom_group_daily_stat"
    __table_args__ = (UniqueConstraint("bot_id", "owner", "day", name="uq_wecom_group_daily_stat"),)

    id: int | None = Field(default=None, primary_key=True)
    bot_id: str = Field(max_length=64)
    owner: str = Field(max_length=128)
    day: datetime = utc_column()
    new_chat_cnt: int = 0
    chat_total: int = 0
    chat_has_msg: int = 0
    new_member_cnt: int = 0
    member_total: int = 0
    member_has_msg: int = 0
    msg_total: int = 0
    migrate_trainee_chat_cnt: int = 0
    fetched_at: datetime = utc_column()


class OutboxPost(SQLModel, table=True):
    """A post to deliver: written first, sent by the outbox sender, never twice.

    The unique key (group, job, period) makes a second run of a job for the same period
    create nothing. ``state`` is ``pending``, ``sending`` (claimed by one sender right
    before its POST), ``sent`` or ``failed`` (``error`` says why, as the platform said it).
    """

    __tablename__ = "outbox_post"
    __table_args__ = (
        UniqueConstraint("group_key", "job", "period_key", name="uq_outbox_group_job_period"),
        Index("ix_outbox_state_due", "state", "next_attempt_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    #: ``platform:chat_id`` of the group the post is about (or ``operators:...``).
    group_key: str = Field(max_length=160)
    job: str = Field(max_length=64)
    period_key: str = Field(max_length=64)
    platform: str = Field(max_length=16)
    #: Where it goes: the config key naming the webhook, e.g. ``groups[0].webhook``.
    target: str = Field(max_length=128)
    msg_type: str = Field(max_length=16)
    title: str = Field(max_length=256)
    body: str = Field(sa_column=Column(Text, nullable=False))
    state: str = Field(default="pending", max_length=16)
    attempts: int = 0
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    created_at: datetime = utc_column()
    next_attempt_at: datetime = utc_column()
    sent_at: datetime | None = utc_column(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=64)


class JobRun(SQLModel, table=True):
    """One scheduled fire of a job: the unique key makes a made-up run happen once."""

    __tablename__ = "job_run"
    __table_args__ = (UniqueConstraint("job", "scheduled_for", name="uq_job_run_job_time"),)

    id: int | None = Field(default=None, primary_key=True)
    job: str = Field(max_length=64)
    scheduled_for: datetime = utc_column()
    started_at: datetime = utc_column()
    finished_at: datetime | None = utc_column(nullable=True)
    #: ``running``, ``done`` or ``failed``.
    status: str = Field(default="running", max_length=16)
    runner: str = Field(max_length=64)
    detail: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class SchedulerLease(SQLModel, table=True):
    """Who runs the scheduled jobs: one row per lease name, held until ``expires_at``."""

    __tablename__ = "scheduler_lease"

    name: str = Field(primary_key=True, max_length=64)
    holder: str = Field(max_length=64)
    expires_at: datetime = utc_column()


class Alert(SQLModel, table=True):
    """A private alert to a group's operators: stored first, then sent through the outbox.

    ``dedupe_key`` makes a redelivered or twice-scored message alert once
    (``message:<id>``), a burst once per triggering message and a spike once per
    (measure, hour). ``state`` is ``pending`` until its outbox posts settle, then ``sent``
    or ``failed`` (``error`` says why, e.g. which config key names no operator).
    """

    __tablename__ = "alert"
    __table_args__ = (
        UniqueConstraint("dedupe_key", name="uq_alert_dedupe_key"),
        Index("ix_alert_group_raised", "group_id", "raised_at"),
        Index("ix_alert_raised", "raised_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="chat_group.id")
    #: ``negative``, ``keyword``, ``burst``, ``spike_messages``, ``spike_negative``,
    #: ``spike_leaves``.
    kind: str = Field(max_length=32)
    dedupe_key: str = Field(max_length=200)
    #: The sender of a single-message alert (NULL for bursts and spikes).
    member_id: int | None = Field(default=None, foreign_key="member.id")
    message_id: int | None = Field(default=None, foreign_key="message.id")
    #: Every member the alert quotes, as ``,id,id,``: forget finds bursts naming them.
    member_ids: str = Field(default="", sa_column=Column(Text, nullable=False))
    sender_user_id: str | None = Field(default=None, max_length=128)
    sender_name: str | None = Field(default=None, max_length=256)
    text: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    score: float | None = None
    keyword: str | None = Field(default=None, max_length=128)
    #: What the operators read (markdown), as queued.
    summary: str = Field(sa_column=Column(Text, nullable=False))
    message_at: datetime | None = utc_column(nullable=True)
    raised_at: datetime = utc_column()
    state: str = Field(default="pending", max_length=16)
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class AlertCooldown(SQLModel, table=True):
    """Until when a (group, kind, subject) may not alert again: shared by every process.

    Claimed with one conditional UPDATE (``WHERE until <= now``) or one INSERT that the
    primary key lets only one process win, inside the transaction that stores the alert.
    """

    __tablename__ = "alert_cooldown"

    group_id: int = Field(primary_key=True, foreign_key="chat_group.id")
    kind: str = Field(primary_key=True, max_length=32)
    #: The sender's member id for single-message alerts, ``""`` for bursts and spikes.
    subject: str = Field(primary_key=True, max_length=32)
    until: datetime = utc_column()


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
