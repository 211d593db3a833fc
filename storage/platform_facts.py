"""Facts about groups that are not messages or memberships: renames, disbands, roster
versions, and platform notices. Called by the event writer inside its transaction.

Kept apart from :mod:`storage.ingest` so that the writer only needs one call per event
kind (``store_group_change``, ``store_notice``, ``step_member_version``).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.engine import Connection

from bot.events import GroupEvent, MembershipEvent, MemberVersion, NoticeEvent
from storage.models import GroupChange, GroupSyncState, PlatformNotice
from storage.upsert import insert_for

log = logging.getLogger(__name__)

_GROUP_CHANGE = GroupChange.__table__  # type: ignore[attr-defined]
_SYNC_STATE = GroupSyncState.__table__  # type: ignore[attr-defined]
_NOTICE = PlatformNotice.__table__  # type: ignore[attr-defined]


def step_member_version(
    connection: Connection,
    group_id: int,
    event: MembershipEvent,
    version: MemberVersion,
    now: datetime,
) -> None:
    """Remember the roster version; a gap to the last one means a lost event.

    Events may arrive out of order, so a gap only marks the group for a roster re-sync
    (which reconciles from the platform's list); it changes no counts.
    """
    known = connection.execute(
        select(_SYNC_STATE.c.member_version).where(_SYNC_STATE.c.group_id == group_id)
    ).scalar_one_or_none()
    gap = known is not None and known != version.previous
    if gap:
        log.warning(
            "%s group %s: roster version gap (had %s, event follows %s); marked for roster re-sync",
            event.platform,
            event.chat.chat_id,
            known,
            version.previous,
        )
    mark_sync_state(
        connection,
        group_id,
        now,
        member_version=version.current,
        resync_reason="roster version gap: a membership event was lost" if gap else None,
    )


def mark_sync_state(
    connection: Connection,
    group_id: int,
    now: datetime,
    *,
    member_version: str | None,
    resync_reason: str | None,
) -> None:
    """Record a roster version and/or that the group needs a roster re-sync."""
    insert = insert_for(connection, _SYNC_STATE).values(
        group_id=group_id,
        member_version=member_version,
        resync_needed=resync_reason is not None,
        resync_reason=resync_reason,
        updated_at=now,
    )
    updates: dict[str, object] = {"updated_at": insert.excluded.updated_at}
    if member_version is not None:
        updates["member_version"] = insert.excluded.member_version
    if resync_reason is not None:
        updates["resync_needed"] = True
        updates["resync_reason"] = insert.excluded.resync_reason
    connection.execute(insert.on_conflict_do_update(index_elements=["group_id"], set_=updates))


def store_group_change(
    connection: Connection, group_id: int, event: GroupEvent, now: datetime
) -> None:
    """Record a create / rename / disband (the group row itself is already up to date)."""
    connection.execute(
        insert_for(connection, _GROUP_CHANGE)
        .values(
            group_id=group_id,
            kind=event.change,
            name=event.chat.name,
            occurred_at=event.occurred_at,
            event_key=event.event_id,
        )
        .on_conflict_do_nothing()
    )
    if event.change == "renamed" and event.chat.name is None:
        mark_sync_state(
            connection,
            group_id,
            now,
            member_version=None,
            resync_reason="renamed without the new name in the callback",
        )


def store_notice(connection: Connection, event: NoticeEvent, now: datetime) -> None:
    """Queue a platform notice (e.g. ``archive_ready``) as an unhandled row."""
    connection.execute(
        insert_for(connection, _NOTICE).values(
            platform=event.platform,
            bot_id=event.bot_id,
            kind=event.kind,
            occurred_at=event.occurred_at,
            received_at=now,
            handled_at=None,
        )
    )
