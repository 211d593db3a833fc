"""A member's data under the admin's control: opt-out, opt-in, forget and purge.

Each action runs in one transaction together with its audit entry, so that either all
of a member's data is gone (and the log says so) or nothing changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.engine import Connection

from storage.alerts import delete_alerts_naming
from storage.audit import record_audit
from storage.models import GroupMember, Member, MembershipEvent, Message, Order

_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipEvent.__table__  # type: ignore[attr-defined]
_ORDER = Order.__table__  # type: ignore[attr-defined]


class UnknownMember(LookupError):
    """No member with this platform and user id is stored."""


@dataclass(frozen=True, slots=True)
class ForgetResult:
    """What :func:`forget_member` touched, by kind of row."""

    purged: bool
    #: Rows changed (text blanked) or deleted (``purged``), per table.
    counts: dict[str, int] = field(default_factory=dict)


def _member_id(connection: Connection, platform: str, user_id: str) -> int:
    found = connection.execute(
        select(_MEMBER.c.id).where(_MEMBER.c.platform == platform, _MEMBER.c.user_id == user_id)
    ).scalar_one_or_none()
    if found is None:
        raise UnknownMember(f"no member {user_id!r} on {platform} is stored")
    return int(found)


def set_opted_out(
    engine: Engine, platform: str, user_id: str, opted_out: bool, *, by: str = "admin"
) -> bool:
    """Hide (``opted_out=True``) or show a member in public rankings and posts.

    Args:
        by: who asked: ``admin`` (the CLI) or ``member`` (the ``/optout`` command).

    Returns:
        Whether the flag changed (False when it already had this value).

    Raises:
        UnknownMember: qunpulse has never stored this member.
    """
    with engine.begin() as connection:
        member_id = _member_id(connection, platform, user_id)
        changed = connection.execute(
            update(_MEMBER)
            .where(_MEMBER.c.id == member_id, _MEMBER.c.opted_out.is_not(opted_out))
            .values(opted_out=opted_out)
        ).rowcount
        record_audit(
            connection,
            "optout" if opted_out else "optin",
            f"{platform}:{user_id}",
            {"by": by, "changed": bool(changed)},
        )
    return bool(changed)


def forget_alerts_naming(connection: Connection, member_id: int, *, purge: bool) -> int:
    """Delete the stored alerts that name this member; return how many.

    An alert quotes a member's message and names its sender (a burst alert quotes
    several), so forgetting the member deletes it, with or without ``purge``, together
    with its outbox posts (they carry the same text).
    """
    del purge  # both ways the alerts go: they exist to quote the member
    return delete_alerts_naming(connection, member_id)


def forget_member(engine: Engine, platform: str, user_id: str, *, purge: bool) -> ForgetResult:
    """Forget a member, in one transaction on either database.

    Without ``purge`` the member's message text and display name are erased and the
    alerts naming them deleted; the rows stay (type, time, sentiment), so group figures
    for past periods do not change. With ``purge`` every row about the member is
    deleted (messages, membership events, group memberships, orders, the member):
    group figures for past periods change. Either way the audit log records it.

    Raises:
        UnknownMember: qunpulse has never stored this member.
    """
    counts: dict[str, int] = {}
    with engine.begin() as connection:
        member_id = _member_id(connection, platform, user_id)
        counts["alerts"] = forget_alerts_naming(connection, member_id, purge=purge)
        if purge:
            for name, table in (
                ("messages", _MESSAGE),
                ("membership_events", _MEMBERSHIP),
                ("group_memberships", _GROUP_MEMBER),
                ("orders", _ORDER),
            ):
                counts[name] = connection.execute(
                    delete(table).where(table.c.member_id == member_id)
                ).rowcount
            counts["members"] = connection.execute(
                delete(_MEMBER).where(_MEMBER.c.id == member_id)
            ).rowcount
        else:
            counts["messages"] = connection.execute(
                update(_MESSAGE)
                .where(_MESSAGE.c.member_id == member_id, _MESSAGE.c.text.is_not(None))
                .values(text=None, words=None)  # the stored words are the text, cut up
            ).rowcount
            counts["names"] = connection.execute(
                update(_MEMBER)
                .where(_MEMBER.c.id == member_id, _MEMBER.c.display_name.is_not(None))
                .values(display_name=None)
            ).rowcount
        record_audit(
            connection,
            "purge" if purge else "forget",
            f"{platform}:{user_id}",
            counts,
        )
    return ForgetResult(purged=purge, counts=counts)
