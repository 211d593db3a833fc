"""Write normalised platform events: many callbacks' events in one transaction.

The unique keys do the de-duplication: ``inbound_event (platform, event_key)`` for every
event, ``message (platform, platform_msg_id)`` and ``membership_event (group, member,
event_key)`` beside it. A lookup alone could race with a second process; a unique key
cannot.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, case, select
from sqlalchemy.engine import Connection

from bot.events import (
    Chat,
    Event,
    GroupEvent,
    MembershipEvent,
    MessageEvent,
    Person,
    PlatformName,
)
from storage.models import ChatGroup, GroupMember, InboundEvent, Member, Message, utc_now
from storage.models import MembershipEvent as MembershipRow
from storage.platform_facts import step_member_version, store_group_change, store_notice
from storage.upsert import insert_for

_GROUP = ChatGroup.__table__  # type: ignore[attr-defined]
_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipRow.__table__  # type: ignore[attr-defined]
_INBOUND = InboundEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of one event: ``new`` is False for a redelivery."""

    event: Event
    new: bool


class EventStore:
    """Persist events; safe to call again with the same events.

    Group and member ids are cached per process (they never change once created), so a
    busy group costs one ``INSERT`` per message and nothing else.
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._groups: dict[tuple[str, str], tuple[int, str | None, str]] = {}
        self._members: dict[tuple[str, str], tuple[int, str | None]] = {}

    def forget_cached_ids(self) -> None:
        """Drop cached ids (after rows were deleted, e.g. a member purged)."""
        self._groups.clear()
        self._members.clear()

    def store(self, batches: Sequence[Sequence[Event]]) -> list[list[Stored]]:
        """Store several callbacks' events in one transaction and say which were new.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the transaction failed; nothing was stored.
        """
        groups = dict(self._groups)
        members = dict(self._members)
        with self._engine.begin() as connection:
            writer = _Writer(connection, groups, members)
            results = [[writer.store(event) for event in batch] for batch in batches]
        # Only ids of a committed transaction reach the caches.
        self._groups = groups
        self._members = members
        return results


class _Writer:
    def __init__(
        self,
        connection: Connection,
        groups: dict[tuple[str, str], tuple[int, str | None, str]],
        members: dict[tuple[str, str], tuple[int, str | None]],
    ) -> None:
        self.connection = connection
        self.groups = groups
        self.members = members
        self.now = utc_now()

    def store(self, event: Event) -> Stored:
        if not self._first_sight(event.platform, event.dedupe_key, event.bot_id):
            return Stored(event, new=False)
        if isinstance(event, MessageEvent):
            self._store_message(event)
        elif isinstance(event, MembershipEvent):
            self._store_membership(event)
        elif isinstance(event, GroupEvent):
            group_id = self._group_id(event.platform, event.chat, None)
            store_group_change(self.connection, group_id, event, self.now)
        else:
            store_notice(self.connection, event, self.now)
        return Stored(event, new=True)

    def _first_sight(self, platform: str, key: str, bot_id: str) -> bool:
        statement = (
            insert_for(self.connection, _INBOUND)
            .values(platform=platform, event_key=key, bot_id=bot_id, received_at=self.now)
            .on_conflict_do_nothing()
            .returning(_INBOUND.c.id)
        )
        return self.connection.execute(statement).first() is not None

    def _store_message(self, event: MessageEvent) -> None:
        member_id = self._member_id(event.platform, event.sender)
        if event.chat.chat_type != "group":
            return  # private chats with the bot are commands, not group activity
        group_id = self._group_id(event.platform, event.chat, event.source)
        inserted = self.connection.execute(
            insert_for(self.connection, _MESSAGE)
            .values(
                platform=event.platform,
                platform_msg_id=event.message_id,
                group_id=group_id,
                member_id=member_id,
                msg_type=event.msg_type,
                text=event.text,
                sent_at=event.sent_at,
                is_command=_is_command(event.text),
            )
            .on_conflict_do_nothing()
            .returning(_MESSAGE.c.id)
        ).first()
        if inserted is not None:
            self._seen_in_group(group_id, member_id, event.sent_at)

    def _store_membership(self, event: MembershipEvent) -> None:
        group_id = self._group_id(event.platform, event.chat, event.source)
        for person in event.members:
            member_id = self._member_id(event.platform, person)
            self.connection.execute(
                insert_for(self.connection, _MEMBERSHIP)
                .values(
                    group_id=group_id,
                    member_id=member_id,
                    kind=event.change,
                    occurred_at=event.occurred_at,
                    source="callback",
                    event_key=event.event_id,
                )
                .on_conflict_do_nothing()
            )
            self._seen_in_group(group_id, member_id, event.occurred_at)
        if event.member_version is not None:
            step_member_version(self.connection, group_id, event, event.member_version, self.now)

    def _seen_in_group(self, group_id: int, member_id: int, at: datetime) -> None:
        insert = insert_for(self.connection, _GROUP_MEMBER).values(
            group_id=group_id, member_id=member_id, first_seen_at=at
        )
        earlier = case(
            (
                insert.excluded.first_seen_at < _GROUP_MEMBER.c.first_seen_at,
                insert.excluded.first_seen_at,
            ),
            else_=_GROUP_MEMBER.c.first_seen_at,
        )
        self.connection.execute(
            insert.on_conflict_do_update(
                index_elements=["group_id", "member_id"], set_={"first_seen_at": earlier}
            )
        )

    def _group_id(self, platform: PlatformName, chat: Chat, source: str | None) -> int:
        key = (platform, chat.chat_id)
        cached = self.groups.get(key)
        if cached is not None:
            group_id, name, known_source = cached
            name_stale = chat.name is not None and chat.name != name
            # A group is upgraded to "full" once any complete source feeds it, never back.
            source_upgrade = source == "full" and known_source != "full"
            if not (name_stale or source_upgrade):
                return group_id
        insert = insert_for(self.connection, _GROUP).values(
            platform=platform,
            chat_id=chat.chat_id,
            name=chat.name,
            source=source or "at_mentions_only",
            created_at=self.now,
        )
        updates: dict[str, object] = {}
        if chat.name is not None:
            updates["name"] = insert.excluded.name
        if source == "full":
            updates["source"] = "full"
        statement = (
            insert.on_conflict_do_update(index_elements=["platform", "chat_id"], set_=updates)
            if updates
            else insert.on_conflict_do_nothing()
        )
        self.connection.execute(statement)
        row = self.connection.execute(
            select(_GROUP.c.id, _GROUP.c.name, _GROUP.c.source).where(
                _GROUP.c.platform == platform, _GROUP.c.chat_id == chat.chat_id
            )
        ).one()
        self.groups[key] = (row.id, row.name, row.source)
        return int(row.id)

    def _member_id(self, platform: PlatformName, person: Person) -> int:
        key = (platform, person.user_id)
        cached = self.members.get(key)
        if cached is not None and (person.name is None or person.name == cached[1]):
            return cached[0]
        insert = insert_for(self.connection, _MEMBER).values(
            platform=platform,
            user_id=person.user_id,
            display_name=person.name,
            is_bot=person.is_bot,
            opted_out=False,
            created_at=self.now,
        )
        statement = (
            insert.on_conflict_do_update(
                index_elements=["platform", "user_id"],
                set_={"display_name": insert.excluded.display_name},
            )
            if person.name is not None
            else insert.on_conflict_do_nothing()
        )
        self.connection.execute(statement)
        row = self.connection.execute(
            select(_MEMBER.c.id, _MEMBER.c.display_name).where(
                _MEMBER.c.platform == platform, _MEMBER.c.user_id == person.user_id
            )
        ).one()
        self.members[key] = (row.id, row.display_name)
        return int(row.id)


COMMAND_PREFIXES = ("/", "／")


def _is_command(text: str | None) -> bool:
    return text is not None and text.lstrip().startswith(COMMAND_PREFIXES)
