"""What chat commands read and write: opt-out flags, a member's days, silent members, replies.

Synchronous functions over an engine (the dispatcher runs them on a worker thread);
aggregates are computed in SQL and come back as plain frozen records.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Engine, and_, func, select, update

from analytics.periods import OffsetSegment
from storage.models import ChatGroup, CommandReply, GroupMember, Member, MembershipEvent, Message
from storage.models import utc_now as _utc_now
from storage.queries import DEPARTURES, GroupRecord, as_date, aware_utc, local_date
from storage.upsert import insert_for

_GROUP = ChatGroup.__table__  # type: ignore[attr-defined]
_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipEvent.__table__  # type: ignore[attr-defined]
_REPLY = CommandReply.__table__  # type: ignore[attr-defined]


def _group(row: object) -> GroupRecord:
    return GroupRecord(row.id, row.platform, row.chat_id, row.name, row.source)  # type: ignore[attr-defined]


def groups_on(engine: Engine, platform: str) -> list[GroupRecord]:
    """Every group the bot knows on ``platform``, by chat id."""
    query = select(_GROUP).where(_GROUP.c.platform == platform).order_by(_GROUP.c.chat_id)
    with engine.connect() as connection:
        return [_group(row) for row in connection.execute(query)]


def groups_of_member(engine: Engine, platform: str, user_id: str) -> list[GroupRecord]:
    """The groups ``user_id`` was seen in (a message, a join or a roster entry)."""
    query = (
        select(_GROUP)
        .select_from(
            _GROUP.join(_GROUP_MEMBER, _GROUP_MEMBER.c.group_id == _GROUP.c.id).join(
                _MEMBER, _MEMBER.c.id == _GROUP_MEMBER.c.member_id
            )
        )
        .where(_MEMBER.c.platform == platform, _MEMBER.c.user_id == user_id)
        .order_by(_GROUP.c.chat_id)
    )
    with engine.connect() as connection:
        return [_group(row) for row in connection.execute(query)]


def is_opted_out(engine: Engine, platform: str, user_id: str) -> bool:
    query = select(_MEMBER.c.opted_out).where(
        _MEMBER.c.platform == platform, _MEMBER.c.user_id == user_id
    )
    with engine.connect() as connection:
        return bool(connection.execute(query).scalar_one_or_none())


def first_seen(engine: Engine, group_id: int, platform: str, user_id: str) -> datetime | None:
    """When the member was first seen in the group."""
    query = (
        select(_GROUP_MEMBER.c.first_seen_at)
        .select_from(_GROUP_MEMBER.join(_MEMBER, _MEMBER.c.id == _GROUP_MEMBER.c.member_id))
        .where(
            _GROUP_MEMBER.c.group_id == group_id,
            _MEMBER.c.platform == platform,
            _MEMBER.c.user_id == user_id,
        )
    )
    with engine.connect() as connection:
        value = connection.execute(query).scalar_one_or_none()
    return value if isinstance(value, datetime) else None


def active_dates(
    engine: Engine,
    group_id: int,
    platform: str,
    user_id: str,
    start: datetime,
    end: datetime,
    segments: Sequence[OffsetSegment],
) -> set[date]:
    """The local days in ``[start, end)`` on which the member sent a message (not a command)."""
    with engine.connect() as connection:
        day = local_date(connection, _MESSAGE.c.sent_at, segments)
        query = (
            select(func.distinct(day))
            .select_from(_MESSAGE.join(_MEMBER, _MEMBER.c.id == _MESSAGE.c.member_id))
            .where(
                _MESSAGE.c.group_id == group_id,
                _MEMBER.c.platform == platform,
                _MEMBER.c.user_id == user_id,
                _MESSAGE.c.sent_at >= start,
                _MESSAGE.c.sent_at < end,
                _MESSAGE.c.is_command.is_(False),
            )
        )
        return {as_date(value) for value in connection.execute(query).scalars()}


@dataclass(frozen=True, slots=True)
class SilentMember:
    """A member still in the group whose last message is older than the cut-off."""

    user_id: str
    name: str | None
    #: Their last message in the group (commands included), or None if never seen talking.
    last_message_at: datetime | None
    first_seen_at: datetime


def silent_members(engine: Engine, group_id: int, since: datetime) -> list[SilentMember]:
    """Members of the group (not bots, not departed) with no message since ``since``.

    Someone first seen after ``since`` is not silent yet: they have not had the time.
    """
    last_message = (
        select(func.max(_MESSAGE.c.sent_at))
        .where(
            _MESSAGE.c.group_id == _GROUP_MEMBER.c.group_id,
            _MESSAGE.c.member_id == _GROUP_MEMBER.c.member_id,
        )
        .scalar_subquery()
    )
    latest_kind = (
        select(_MEMBERSHIP.c.kind)
        .where(
            _MEMBERSHIP.c.group_id == _GROUP_MEMBER.c.group_id,
            _MEMBERSHIP.c.member_id == _GROUP_MEMBER.c.member_id,
        )
        .order_by(_MEMBERSHIP.c.occurred_at.desc(), _MEMBERSHIP.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    last = last_message.label("last_at")
    query = (
        select(_MEMBER.c.user_id, _MEMBER.c.display_name, _GROUP_MEMBER.c.first_seen_at, last)
        .select_from(_GROUP_MEMBER.join(_MEMBER, _MEMBER.c.id == _GROUP_MEMBER.c.member_id))
        .where(
            _GROUP_MEMBER.c.group_id == group_id,
            _GROUP_MEMBER.c.first_seen_at < since,
            _MEMBER.c.is_bot.is_(False),
            func.coalesce(latest_kind, "join").not_in(DEPARTURES),
            func.coalesce(last_message, _GROUP_MEMBER.c.first_seen_at) < since,
        )
        .order_by(func.coalesce(last_message, _GROUP_MEMBER.c.first_seen_at), _MEMBER.c.user_id)
    )
    with engine.connect() as connection:
        rows = connection.execute(query).all()
    return [
        SilentMember(
            row.user_id,
            row.display_name,
            aware_utc(row.last_at),
            row.first_seen_at,
        )
        for row in rows
    ]


def claim_reply(
    engine: Engine,
    *,
    platform: str,
    message_id: str,
    bot_id: str,
    chat_id: str,
    user_id: str,
    command: str,
) -> bool:
    """Record that this command message is being answered; False if it already was.

    The unique key (platform, message_id) makes the claim atomic across processes.
    """
    with engine.begin() as connection:
        statement = (
            insert_for(connection, _REPLY)
            .values(
                platform=platform,
                message_id=message_id,
                bot_id=bot_id,
                chat_id=chat_id,
                user_id=user_id,
                command=command,
                status="pending",
                channel="none",
                created_at=_utc_now(),
            )
            .on_conflict_do_nothing()
            .returning(_REPLY.c.id)
        )
        return connection.execute(statement).first() is not None


def finish_reply(
    engine: Engine,
    *,
    platform: str,
    message_id: str,
    status: str,
    channel: str,
    error: str | None = None,
) -> None:
    """Record how a claimed command was answered."""
    statement = (
        update(_REPLY)
        .where(and_(_REPLY.c.platform == platform, _REPLY.c.message_id == message_id))
        .values(
            status=status,
            channel=channel,
            error=error[:500] if error else None,
            answered_at=_utc_now(),
        )
    )
    with engine.begin() as connection:
        connection.execute(statement)


@dataclass(frozen=True, slots=True)
class ReplyRecord:
    platform: str
    message_id: str
    command: str
    status: str
    channel: str
    error: str | None


def list_replies(engine: Engine) -> list[ReplyRecord]:
    """Every recorded command reply, oldest first."""
    query = select(_REPLY).order_by(_REPLY.c.id)
    with engine.connect() as connection:
        return [
            ReplyRecord(r.platform, r.message_id, r.command, r.status, r.channel, r.error)
            for r in connection.execute(query)
        ]
