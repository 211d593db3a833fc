"""Reconcile a group's stored membership with a roster snapshot from the platform.

A snapshot is a fact about *now*, not about when anyone joined or left, so it never adds
``join``, ``leave`` or ``removed`` events (those are counted as joins and leaves). Instead:

- everyone on the roster is recorded as seen in the group, from the join time the
  platform reports (or the sync time when it reports none);
- a listed member whose last membership event is a departure gets a ``present`` fact, and
  a member we count as present who is not listed gets an ``absent`` fact, both with
  ``source = "roster"``; ``members`` follows these facts, ``joins``/``leaves`` do not;
- the group's ``resync_needed`` flag is cleared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, and_, case, select
from sqlalchemy.engine import Connection

from storage.models import ChatGroup, GroupMember, GroupSyncState, Member, MembershipEvent
from storage.upsert import insert_for

_GROUP = ChatGroup.__table__  # type: ignore[attr-defined]
_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipEvent.__table__  # type: ignore[attr-defined]
_SYNC_STATE = GroupSyncState.__table__  # type: ignore[attr-defined]

#: Membership kinds after which a member is not in the group (``absent`` from a roster).
NOT_IN_GROUP = ("leave", "removed", "absent")


@dataclass(frozen=True, slots=True)
class RosterEntry:
    """One member as the platform lists them."""

    user_id: str
    name: str | None = None
    joined_at: datetime | None = None
    is_bot: bool = False


@dataclass(frozen=True, slots=True)
class RosterResult:
    """What a sync changed: ``newly_seen`` were unknown in this group before."""

    members: int
    newly_seen: int
    marked_present: int
    marked_absent: int


def apply_roster(
    engine: Engine,
    platform: str,
    chat_id: str,
    name: str | None,
    entries: Sequence[RosterEntry],
    synced_at: datetime,
    source: str | None = None,
) -> RosterResult:
    """Store a roster snapshot of one group (created if unknown) in one transaction.

    ``source = "full"`` upgrades the group's source (Feishu), as a message would.
    """
    with engine.begin() as connection:
        group_id = _group(connection, platform, chat_id, name, synced_at, source)
        listed: dict[int, RosterEntry] = {}
        for entry in entries:
            listed[_member(connection, platform, entry, synced_at)] = entry
        known = {
            row.member_id: row.first_seen_at
            for row in connection.execute(
                select(_GROUP_MEMBER.c.member_id, _GROUP_MEMBER.c.first_seen_at).where(
                    _GROUP_MEMBER.c.group_id == group_id
                )
            )
        }
        latest = _latest_kinds(connection, group_id)
        key = f"roster:{synced_at.isoformat()}"
        newly_seen = present = absent = 0
        for member_id, entry in listed.items():
            seen_at = entry.joined_at or synced_at
            if member_id not in known:
                newly_seen += 1
            _seen(connection, group_id, member_id, seen_at)
            if latest.get(member_id) in NOT_IN_GROUP:
                present += 1
                _fact(connection, group_id, member_id, "present", synced_at, key)
        for member_id in known:
            if member_id not in listed and latest.get(member_id) not in NOT_IN_GROUP:
                absent += 1
                _fact(connection, group_id, member_id, "absent", synced_at, key)
        _clear_resync(connection, group_id, synced_at)
    return RosterResult(len(listed), newly_seen, present, absent)


def _group(
    connection: Connection,
    platform: str,
    chat_id: str,
    name: str | None,
    now: datetime,
    source: str | None,
) -> int:
    insert = insert_for(connection, _GROUP).values(
        platform=platform,
        chat_id=chat_id,
        name=name,
        source=source or "at_mentions_only",
        created_at=now,
    )
    updates: dict[str, object] = {}
    if name:
        updates["name"] = insert.excluded.name
    if source == "full":
        updates["source"] = "full"
    statement = (
        insert.on_conflict_do_update(index_elements=["platform", "chat_id"], set_=updates)
        if updates
        else insert.on_conflict_do_nothing()
    )
    connection.execute(statement)
    return int(
        connection.execute(
            select(_GROUP.c.id).where(_GROUP.c.platform == platform, _GROUP.c.chat_id == chat_id)
        ).scalar_one()
    )


def _member(connection: Connection, platform: str, entry: RosterEntry, now: datetime) -> int:
    insert = insert_for(connection, _MEMBER).values(
        platform=platform,
        user_id=entry.user_id,
        display_name=entry.name,
        is_bot=entry.is_bot,
        opted_out=False,
        created_at=now,
    )
    statement = (
        insert.on_conflict_do_update(
            index_elements=["platform", "user_id"],
            set_={"display_name": insert.excluded.display_name},
        )
        if entry.name
        else insert.on_conflict_do_nothing()
    )
    connection.execute(statement)
    return int(
        connection.execute(
            select(_MEMBER.c.id).where(
                _MEMBER.c.platform == platform, _MEMBER.c.user_id == entry.user_id
            )
        ).scalar_one()
    )


def _latest_kinds(connection: Connection, group_id: int) -> dict[int, str]:
    rows = connection.execute(
        select(_MEMBERSHIP.c.member_id, _MEMBERSHIP.c.kind)
        .where(_MEMBERSHIP.c.group_id == group_id)
        .order_by(_MEMBERSHIP.c.occurred_at, _MEMBERSHIP.c.id)
    )
    return {row.member_id: row.kind for row in rows}  # the last one per member wins


def _seen(connection: Connection, group_id: int, member_id: int, at: datetime) -> None:
    insert = insert_for(connection, _GROUP_MEMBER).values(
        group_id=group_id, member_id=member_id, first_seen_at=at
    )
    earlier = case(
        (
            insert.excluded.first_seen_at < _GROUP_MEMBER.c.first_seen_at,
            insert.excluded.first_seen_at,
        ),
        else_=_GROUP_MEMBER.c.first_seen_at,
    )
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["group_id", "member_id"], set_={"first_seen_at": earlier}
        )
    )


def _fact(
    connection: Connection, group_id: int, member_id: int, kind: str, at: datetime, key: str
) -> None:
    connection.execute(
        insert_for(connection, _MEMBERSHIP)
        .values(
            group_id=group_id,
            member_id=member_id,
            kind=kind,
            occurred_at=at,
            source="roster",
            event_key=key,
        )
        .on_conflict_do_nothing()
    )


def _clear_resync(connection: Connection, group_id: int, now: datetime) -> None:
    insert = insert_for(connection, _SYNC_STATE).values(
        group_id=group_id, member_version=None, resync_needed=False, updated_at=now
    )
    connection.execute(
        insert.on_conflict_do_update(
            index_elements=["group_id"],
            set_={"resync_needed": False, "resync_reason": None, "updated_at": now},
        )
    )


def groups_to_sync(engine: Engine, platform: str, chat_id: str | None) -> list[tuple[str, str]]:
    """``(platform, chat_id)`` of the stored groups of ``platform`` (or just ``chat_id``)."""
    query = select(_GROUP.c.platform, _GROUP.c.chat_id).where(_GROUP.c.platform == platform)
    if chat_id is not None:
        query = query.where(and_(_GROUP.c.chat_id == chat_id))
    with engine.connect() as connection:
        return [(row.platform, row.chat_id) for row in connection.execute(query)]
