"""Retention: old message text, membership events and alerts expire.

Blanking text keeps the message row (type, time, sender, sentiment, command flag), so
every count that a metric needs stays exactly the same; only what was said is gone.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import and_, delete, exists, select, update
from sqlalchemy.engine import Connection

from storage.alerts import delete_alerts_before
from storage.models import GroupMember, MembershipEvent, Message

_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipEvent.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]

#: Membership kinds after which a member is no longer in the group.
_DEPARTURES = ("leave", "removed")


def blank_message_text(connection: Connection, before: datetime) -> int:
    """Erase the text (and its stored words) of messages sent before ``before``; return how many."""
    return int(
        connection.execute(
            update(_MESSAGE)
            .where(_MESSAGE.c.sent_at < before, _MESSAGE.c.text.is_not(None))
            .values(text=None, words=None)  # the stored words are the text, cut up
        ).rowcount
    )


def delete_membership_events(connection: Connection, before: datetime) -> int:
    """Delete membership events before ``before``; return how many.

    A member whose *latest* event in a group is a departure older than ``before`` has
    left long ago: their group membership row goes too, otherwise losing the departure
    would count them as a member again. Members still in the group only lose the date
    they joined (they stay members).
    """
    later = _MEMBERSHIP.alias("later")
    newer_exists = exists(
        select(later.c.id).where(
            later.c.group_id == _MEMBERSHIP.c.group_id,
            later.c.member_id == _MEMBERSHIP.c.member_id,
            later.c.occurred_at >= before,
        )
    )
    latest = _MEMBERSHIP.alias("latest")
    latest_time = (
        select(latest.c.occurred_at)
        .where(
            latest.c.group_id == _MEMBERSHIP.c.group_id,
            latest.c.member_id == _MEMBERSHIP.c.member_id,
        )
        .order_by(latest.c.occurred_at.desc(), latest.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    departed = select(_MEMBERSHIP.c.group_id, _MEMBERSHIP.c.member_id).where(
        _MEMBERSHIP.c.kind.in_(_DEPARTURES),
        _MEMBERSHIP.c.occurred_at < before,
        _MEMBERSHIP.c.occurred_at == latest_time,
        ~newer_exists,
    )
    gone = [(row.group_id, row.member_id) for row in connection.execute(departed)]
    for group_id, member_id in gone:
        connection.execute(
            delete(_GROUP_MEMBER).where(
                and_(_GROUP_MEMBER.c.group_id == group_id, _GROUP_MEMBER.c.member_id == member_id)
            )
        )
    return int(
        connection.execute(delete(_MEMBERSHIP).where(_MEMBERSHIP.c.occurred_at < before)).rowcount
    )


def delete_alerts(connection: Connection, before: datetime) -> int:
    """Delete alerts raised before ``before`` (and their outbox posts); return how many."""
    return delete_alerts_before(connection, before)
