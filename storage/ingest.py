"""Write normalised platform events: many callbacks' events in one transaction.

The unique keys do the de-duplication: ``inbound_event (platform, event_key)`` for every
event, ``message (platform, platform_msg_id)`` and ``membership_event (group, member,
event_key)`` beside it. A lookup alone could race with a second process; a unique key
cannot.

Writes are set-based: a batch of any size costs a handful of multi-row statements
(``INSERT … ON CONFLICT DO NOTHING RETURNING``), not a few statements per event, which is
what lets the group-commit writer keep up with thousands of callbacks a second.

The four hot statements (:class:`_BulkInsert`) are plain SQL handed to the driver, with
each value bound through its column's own SQLAlchemy type, so what reaches the database
is what an ORM insert would send. On PostgreSQL each is one short, fixed statement over
arrays (``INSERT … SELECT * FROM unnest(%s::text[], …)``): psycopg prepares it once and
neither psycopg nor the server parses it again, whatever the batch size. On SQLite it is
a multi-row ``VALUES`` list (SQLite parses that in C, and keeps the prepared statements).
On PostgreSQL the server's usual batch (chat messages into groups already known) is one
statement, claims, members, messages and sightings together, on an autocommit connection
of the event loop's own (:class:`_StoreMessages`): one round trip instead of six or more.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Boolean, Column, DateTime, Engine, Float, Integer, String, Table, select
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.events import (
    Chat,
    Event,
    GroupEvent,
    MembershipEvent,
    MessageEvent,
    NoticeEvent,
    Person,
    PlatformName,
)
from storage.models import ChatGroup, GroupMember, InboundEvent, Member, Message, utc_now
from storage.models import MembershipEvent as MembershipRow
from storage.platform_facts import step_member_version, store_group_change, store_notice
from storage.upsert import insert_for

if TYPE_CHECKING:
    from psycopg import AsyncConnection

log = logging.getLogger(__name__)

_GROUP = ChatGroup.__table__  # type: ignore[attr-defined]
_MEMBER = Member.__table__  # type: ignore[attr-defined]
_GROUP_MEMBER = GroupMember.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_MEMBERSHIP = MembershipRow.__table__  # type: ignore[attr-defined]
_INBOUND = InboundEvent.__table__  # type: ignore[attr-defined]

COMMAND_PREFIXES = ("/", "／")

GroupKey = tuple[str, str]
MemberKey = tuple[str, str]


@dataclass(frozen=True, slots=True)
class Stored:
    """What became of one event: ``new`` is False for a redelivery."""

    event: Event
    new: bool


@dataclass(slots=True)
class _Caches:
    """Ids and facts known to be committed; a transaction adds to a copy-on-commit overlay."""

    groups: dict[GroupKey, tuple[int, str | None, str]]
    members: dict[MemberKey, tuple[int, str | None]]
    #: (group id, member id) → first time seen in the group.
    seen: dict[tuple[int, int], datetime]


class EventStore:
    """Persist events; safe to call again with the same events.

    Group and member ids (and when each member was first seen in each group) are cached
    per process, so a busy group costs two multi-row ``INSERT`` statements per batch.

    Another process may delete what the cache knows (``qunpulse member forget``, the
    retention job): a write that then fails on a foreign key drops the caches and is
    retried once, and the caches are dropped every ``cache_ttl`` seconds anyway, so a
    forgotten name or an expired group membership is stored again when the member
    writes again.

    :meth:`store` blocks (history imports, worker threads); :meth:`store_async` is the
    server's way, on its event loop (see there), and :meth:`aclose` ends it.
    """

    def __init__(self, engine: Engine, *, cache_ttl: float = 600.0) -> None:
        self._engine = engine
        self._cache_ttl = cache_ttl
        self._sql = _Statements(engine.dialect)
        self._caches = _Caches({}, {}, {})
        self._cached_since = time.monotonic()
        #: The event loop's own SQLite connection (:meth:`store_async`).
        self._on_loop: Connection | None = None
        #: The WAL checkpoint running beside it, if any (:meth:`_checkpoint_aside`).
        self._checkpoint: asyncio.Future[None] | None = None
        self._checkpointed_at = time.monotonic()
        #: PostgreSQL: the event loop's own autocommit connection (:meth:`_store_postgresql`),
        #: and when to try opening it again after it could not be opened.
        self._autocommit: AsyncConnection[Any] | None = None
        self._autocommit_retry_at = 0.0

    def forget_cached_ids(self) -> None:
        """Drop cached ids (after rows were deleted, e.g. a member purged)."""
        self._caches = _Caches({}, {}, {})
        self._cached_since = time.monotonic()

    def store_messages(self, events: Sequence[MessageEvent]) -> list[bool]:
        """Store many messages (a history import) in one transaction; say which were new.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the transaction failed; nothing was stored.
        """
        return [stored.new for stored in self.store([events])[0]]

    def store(self, batches: Sequence[Sequence[Event]]) -> list[list[Stored]]:
        """Store several callbacks' events in one transaction and say which were new.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the transaction failed; nothing was stored.
        """
        return self._store(batches, self._engine.begin)

    async def store_async(self, batches: Sequence[Sequence[Event]]) -> list[list[Stored]]:
        """:meth:`store`, from the event loop, without a worker thread where it can.

        SQLite: the loop does the writing itself, on a connection that never waits for a
        lock (a batch is a millisecond or two of work). A worker thread shares the GIL
        with the loop: each database call releases it, and taking it back can wait a
        whole switch interval (5 ms) while the loop is busy, so a batch took many times
        its own work while callbacks piled up behind it. When another process holds the
        write lock, the batch waits for it on a worker thread instead, so the loop never
        blocks. PostgreSQL: see :meth:`_store_postgresql`.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the transaction failed; nothing was stored.
        """
        if self._engine.dialect.name != "sqlite":
            return await self._store_postgresql(batches)
        connection = self._sqlite_loop_connection()
        try:
            stored = self._store_on(connection, batches)
        except OperationalError as error:
            if not _sqlite_busy(error):
                self._on_loop = None
                connection.close()
                raise
            return await asyncio.to_thread(self.store, batches)
        self._checkpoint_aside()
        return stored

    async def _store_postgresql(self, batches: Sequence[Sequence[Event]]) -> list[list[Stored]]:
        """Store a batch of messages in one statement, anything else on a worker thread.

        Chat messages into groups the caches know — the server's steady stream — go to
        the database as one statement (:class:`_StoreMessages`) on an autocommit
        connection of the loop's own, psycopg's asyncio connection: no worker thread, no
        pool ping, no ``BEGIN`` or ``COMMIT`` round trips. Anything else (a new or
        renamed group, a membership change) takes the general path on a worker thread,
        and so does a batch whose statement fails: a purge in another process deleted a
        cached id (the caches are dropped first), or the connection was lost (the next
        batch opens a new one). The general path raises if the database really refuses.
        """
        statement = self._sql.store_messages
        self._expire_caches()
        plan = None if statement is None else _messages_plan(batches, self._caches, utc_now())
        if statement is not None and plan is not None:
            import psycopg

            try:
                connection = await self._autocommit_connection()
                if connection is not None:
                    cursor = await connection.execute(
                        statement.sql, statement.parameters(plan), prepare=True
                    )
                    return _flags(batches, statement.learn(await cursor.fetchall(), self._caches))
            except psycopg.IntegrityError:
                log.info("a cached id is gone (a member purged?); storing from the database")
                self.forget_cached_ids()
            except psycopg.Error as error:
                log.warning("the one-statement write failed (%s); storing in a transaction", error)
                if isinstance(error, psycopg.OperationalError) or self._autocommit_broken():
                    await self._close_autocommit()
        return await asyncio.to_thread(self.store, batches)

    async def _autocommit_connection(self) -> AsyncConnection[Any] | None:
        """The loop's own connection; ``None`` for a minute after it could not be opened
        (too many connections, say), rather than a failed attempt before every batch."""
        if self._autocommit is not None and not self._autocommit.closed:
            return self._autocommit
        if time.monotonic() < self._autocommit_retry_at:
            return None
        from psycopg import AsyncConnection

        # Exactly what the engine's pool connects with (hosts, ports, password, adapters).
        _, parameters = self._engine.dialect.create_connect_args(self._engine.url)
        try:
            self._autocommit = await AsyncConnection.connect(
                **parameters,
                autocommit=True,
                # Names it in pg_stat_activity, for operators (and the tests).
                application_name="qunpulse-ingest",
            )
        except Exception:
            self._autocommit_retry_at = time.monotonic() + 60.0
            raise
        return self._autocommit

    def _autocommit_broken(self) -> bool:
        return self._autocommit is not None and self._autocommit.broken

    async def _close_autocommit(self) -> None:
        if self._autocommit is not None:
            connection, self._autocommit = self._autocommit, None
            with contextlib.suppress(Exception):  # it is gone either way
                await connection.close()

    async def aclose(self) -> None:
        """Close the event loop's connections (:meth:`store_async` opens new ones)."""
        if self._checkpoint is not None:
            await self._checkpoint
        if self._on_loop is not None:
            self._on_loop.close()
            self._on_loop = None
        await self._close_autocommit()

    def _checkpoint_aside(self) -> None:
        """Copy the WAL into the database file on a worker thread, at most once a second.

        The loop's connection never checkpoints itself (``wal_autocheckpoint = 0``): a
        checkpoint copies up to the whole WAL and syncs the file, and an import beside
        `serve` lets the WAL grow to 64 MiB, which the next commit would otherwise copy
        on the event loop. PASSIVE never waits for readers or writers.
        """
        if self._checkpoint is not None and not self._checkpoint.done():
            return
        if time.monotonic() - self._checkpointed_at < 1.0:
            return
        self._checkpointed_at = time.monotonic()
        loop = asyncio.get_running_loop()
        self._checkpoint = loop.run_in_executor(None, self._checkpoint_now)

    def _checkpoint_now(self) -> None:
        try:
            with self._engine.connect() as connection:
                connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)")
        except Exception:  # the next one will do; the WAL is intact either way
            log.warning("a WAL checkpoint failed; retrying in a second", exc_info=True)

    def _store_on(
        self, connection: Connection, batches: Sequence[Sequence[Event]]
    ) -> list[list[Stored]]:
        return self._store(batches, lambda: _transaction(connection))

    def _store(
        self,
        batches: Sequence[Sequence[Event]],
        begin: Callable[[], AbstractContextManager[Connection]],
    ) -> list[list[Stored]]:
        self._expire_caches()
        try:
            return self._store_once(batches, begin)
        except IntegrityError:
            # A cached id may point at a row that another process deleted (`qunpulse
            # member forget --purge` runs beside `serve`): drop every cached id and try
            # once more from the database. A second failure is a real one.
            if self._caches == _Caches({}, {}, {}):
                raise
            self.forget_cached_ids()
            return self._store_once(batches, begin)

    def _expire_caches(self) -> None:
        if time.monotonic() - self._cached_since >= self._cache_ttl:
            self.forget_cached_ids()

    def _store_once(
        self,
        batches: Sequence[Sequence[Event]],
        begin: Callable[[], AbstractContextManager[Connection]],
    ) -> list[list[Stored]]:
        overlay = _Caches({}, {}, {})
        with begin() as connection:
            results = _Writer(connection, self._sql, self._caches, overlay).store(batches)
        # Only what a committed transaction wrote reaches the caches.
        self._caches.groups.update(overlay.groups)
        self._caches.members.update(overlay.members)
        self._caches.seen.update(overlay.seen)
        return results

    def _sqlite_loop_connection(self) -> Connection:
        if self._on_loop is None:
            self._on_loop = self._engine.connect()
            # Never wait for a lock on the loop: SQLITE_BUSY at once sends the batch to a
            # worker thread (store_async), whose pooled connection waits as usual. Out of
            # the pool, so that no other user ever gets this connection.
            self._on_loop.detach()
            self._on_loop.exec_driver_sql("PRAGMA busy_timeout = 0")
            self._on_loop.exec_driver_sql("PRAGMA wal_autocheckpoint = 0")  # see _checkpoint_aside
            self._on_loop.commit()
        return self._on_loop


@contextlib.contextmanager
def _transaction(connection: Connection) -> Iterator[Connection]:
    with connection.begin():
        yield connection


def _sqlite_busy(error: OperationalError) -> bool:
    """Whether SQLite refused because another connection holds a lock."""
    code = getattr(error.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class _Writer:
    def __init__(
        self, connection: Connection, sql: _Statements, committed: _Caches, overlay: _Caches
    ) -> None:
        self.connection = connection
        self.sql = sql
        self.committed = committed
        self.overlay = overlay
        self.now = utc_now()

    def store(self, batches: Sequence[Sequence[Event]]) -> list[list[Stored]]:
        stored = _flags(batches, self._claim([event for batch in batches for event in batch]))
        fresh = [s.event for flagged in stored for s in flagged if s.new]
        self._resolve_members(
            (event.platform, person)
            for event in fresh
            if isinstance(event, MessageEvent | MembershipEvent)
            for person in ((event.sender,) if isinstance(event, MessageEvent) else event.members)
        )
        self._store_messages([e for e in fresh if isinstance(e, MessageEvent)])
        self._store_membership([e for e in fresh if isinstance(e, MembershipEvent)])
        for event in fresh:  # rare: one statement each is fine
            if isinstance(event, GroupEvent):
                group_id = self._group_id(event.platform, event.chat, None)
                store_group_change(self.connection, group_id, event, self.now)
            elif isinstance(event, NoticeEvent):
                store_notice(self.connection, event, self.now)
        return stored

    def _claim(self, events: list[Event]) -> set[tuple[str, str]]:
        """Insert every event's key (the first event's bot); return the keys claimed now."""
        first: dict[tuple[str, str], Event] = {}
        for event in events:
            first.setdefault((event.platform, event.dedupe_key), event)
        rows = [(*key, event.bot_id, self.now) for key, event in first.items()]
        return {(r[0], r[1]) for r in self.sql.claim.run(self.connection, rows)}

    def _store_messages(self, events: list[MessageEvent]) -> None:
        rows = []
        appearances: list[tuple[str, str, int, int, datetime]] = []
        for event in events:
            member_id = self._member_id(event.platform, event.sender)
            if event.chat.chat_type != "group":
                continue  # private chats with the bot are commands, not group activity
            group_id = self._group_id(event.platform, event.chat, event.source)
            rows.append(
                (
                    event.platform,
                    event.message_id,
                    group_id,
                    member_id,
                    event.msg_type,
                    event.text,
                    event.sent_at,
                    is_command(event.text),
                )
            )
            appearances.append(
                (event.platform, event.message_id, group_id, member_id, event.sent_at)
            )
        inserted = {(r[0], r[1]) for r in self.sql.messages.run(self.connection, rows)}
        self._seen_in_groups(
            (group, member, at)
            for platform, msg, group, member, at in appearances
            if (platform, msg) in inserted
        )

    def _store_membership(self, events: list[MembershipEvent]) -> None:
        rows: list[dict[str, Any]] = []
        sightings: list[tuple[int, int, datetime]] = []
        for event in events:
            group_id = self._group_id(event.platform, event.chat, event.source)
            if event.member_version is not None:
                step_member_version(
                    self.connection, group_id, event, event.member_version, self.now
                )
            for person in event.members:
                member_id = self._member_id(event.platform, person)
                sightings.append((group_id, member_id, event.occurred_at))
                rows.append(
                    {
                        "group_id": group_id,
                        "member_id": member_id,
                        "kind": event.change,
                        "occurred_at": event.occurred_at,
                        "source": "callback",
                        "event_key": event.event_id,
                    }
                )
        if rows:
            self.connection.execute(
                insert_for(self.connection, _MEMBERSHIP).on_conflict_do_nothing(), rows
            )
        self._seen_in_groups(sightings)

    def _seen_in_groups(self, sightings: Iterable[tuple[int, int, datetime]]) -> None:
        """Record the earliest time each member was seen in each group."""
        earliest: dict[tuple[int, int], datetime] = {}
        for group_id, member_id, at in sightings:
            pair = (group_id, member_id)
            known = self.overlay.seen.get(pair) or self.committed.seen.get(pair)
            if known is not None and known <= at:
                continue
            if pair not in earliest or at < earliest[pair]:
                earliest[pair] = at
        if not earliest:
            return
        rows = [(g, m, at) for (g, m), at in earliest.items()]
        # Another process may know an earlier time: the upsert keeps the earlier one and
        # RETURNING reads back what is stored, which keeps the cache true.
        for group_id, member_id, first_seen_at in self.sql.seen.run(self.connection, rows):
            self.overlay.seen[(group_id, member_id)] = first_seen_at

    def _group_id(self, platform: PlatformName, chat: Chat, source: str | None) -> int:
        key = (platform, chat.chat_id)
        cached = self.overlay.groups.get(key) or self.committed.groups.get(key)
        if cached is not None and _group_is_current(cached, chat, source):
            return cached[0]
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
        self.overlay.groups[key] = (row.id, row.name, row.source)
        return int(row.id)

    def _resolve_members(self, people: Iterable[tuple[PlatformName, Person]]) -> None:
        """Upsert every member the cache does not know (or knows under an older name).

        One multi-row statement for the whole batch; the newest name given wins (an event
        without a name, as WeCom's callbacks send them, keeps the name known).
        """
        newest: dict[MemberKey, Person] = {}
        for platform, person in people:
            if person.name is not None or (platform, person.user_id) not in newest:
                newest[platform, person.user_id] = person
        wanted: dict[MemberKey, Person] = {}
        for key, person in newest.items():
            cached = self.overlay.members.get(key) or self.committed.members.get(key)
            if cached is None or not _member_is_current(cached, person):
                wanted[key] = person
        if not wanted:
            return
        rows = [
            (platform, user_id, person.name, False, person.is_bot, self.now)
            for (platform, user_id), person in wanted.items()
        ]
        for member_id, platform, user_id, name in self.sql.members.run(self.connection, rows):
            self.overlay.members[(platform, user_id)] = (member_id, name)

    def _member_id(self, platform: PlatformName, person: Person) -> int:
        key = (platform, person.user_id)
        cached = self.overlay.members.get(key) or self.committed.members.get(key)
        if cached is None:
            raise LookupError(f"member {key} was not resolved before use")
        return cached[0]


def _group_is_current(cached: tuple[int, str | None, str], chat: Chat, source: str | None) -> bool:
    """Whether a cached group row needs no update for a new event from ``chat``."""
    _, name, known_source = cached
    name_stale = chat.name is not None and chat.name != name
    # A group is upgraded to "full" once any complete source feeds it, never back.
    source_upgrade = source == "full" and known_source != "full"
    return not (name_stale or source_upgrade)


def _member_is_current(cached: tuple[int, str | None], person: Person) -> bool:
    """Whether a cached member row needs no update (the newest name wins)."""
    return person.name is None or person.name == cached[1]


@dataclass(slots=True)
class _MessagesPlan:
    """The rows of a batch of messages for :class:`_StoreMessages`."""

    #: One per event key (its first event), in :data:`_CLAIM_COLUMNS` order.
    claims: list[tuple[Any, ...]]
    #: Senders the caches do not know (or know under another name), one row per event:
    #: :data:`_MEMBER_COLUMNS`, then the event's key and position (the newest name given
    #: wins).
    people: list[tuple[Any, ...]]
    #: Group messages, one per event key: :data:`_MESSAGE_COLUMNS` (``member_id`` is
    #: ``None`` for a sender not cached yet), then the event's key, the sender's user id
    #: and whether the sighting may be the member's first in the group.
    messages: list[tuple[Any, ...]]


def _messages_plan(
    batches: Sequence[Sequence[Event]], caches: _Caches, now: datetime
) -> _MessagesPlan | None:
    """The rows of a batch of messages into known groups; ``None`` for any other batch.

    Members and first sightings need not be known: the statement upserts those of new
    events, as :class:`_Writer` would. A group the caches do not know (or know under
    another name or source), or any event other than a message, takes the general path.
    """
    plan = _MessagesPlan([], [], [])
    claimed: set[tuple[str, str]] = set()
    #: Each sender's rows for the members upsert, and the senders any of them is news of.
    people: dict[MemberKey, list[tuple[Any, ...]]] = {}
    news: set[MemberKey] = set()
    for position, event in enumerate(event for batch in batches for event in batch):
        if not isinstance(event, MessageEvent):
            return None
        key = (event.platform, event.dedupe_key)
        if key in claimed:
            continue  # the same event twice: only its first position counts
        claimed.add(key)
        plan.claims.append((*key, event.bot_id, now))
        sender = event.sender
        member = caches.members.get((event.platform, sender.user_id))
        person = (event.platform, sender.user_id, sender.name, False, sender.is_bot, now)
        people.setdefault(person[:2], []).append((*person, event.dedupe_key, position))
        if member is None or not _member_is_current(member, sender):
            news.add(person[:2])
        if event.chat.chat_type != "group":
            continue  # claimed, not stored: see _Writer._store_messages
        group = caches.groups.get((event.platform, event.chat.chat_id))
        if group is None or not _group_is_current(group, event.chat, event.source):
            return None
        member_id = None if member is None else member[0]
        first_seen = None if member is None else caches.seen.get((group[0], member[0]))
        plan.messages.append(
            (
                event.platform,
                event.message_id,
                group[0],
                member_id,
                event.msg_type,
                event.text,
                event.sent_at,
                is_command(event.text),
                event.dedupe_key,
                event.sender.user_id,
                first_seen is None or first_seen > event.sent_at,
            )
        )
    # A sender the cache knows as it is in every event needs no row; any other sender
    # gets one per event, and the statement upserts the newest name of a new event.
    plan.people = [row for sender in news for row in people[sender]]
    return plan


def _flags(
    batches: Sequence[Sequence[Event]], inserted: set[tuple[str, str]]
) -> list[list[Stored]]:
    """Each event's :class:`Stored`: new at the first position of a key just claimed."""
    unflagged = set(inserted)
    results = []
    for batch in batches:
        stored = []
        for event in batch:
            key = (event.platform, event.dedupe_key)
            stored.append(Stored(event, key in unflagged))
            unflagged.discard(key)
        results.append(stored)
    return results


def is_command(text: str | None) -> bool:
    """Whether a message is a command to the bot (starts with ``/`` or ``／``)."""
    return text is not None and text.lstrip().startswith(COMMAND_PREFIXES)


# --- the hot statements as plain SQL ------------------------------------------------------

#: PostgreSQL array types by SQLAlchemy type; strings go as ``text[]`` and are cast to
#: the column's ``varchar(n)`` on assignment, which refuses (not cuts) a value too long.
_PG_ARRAYS: tuple[tuple[type[Any], str], ...] = (
    (Boolean, "boolean[]"),
    (DateTime, "timestamp[]"),
    (Float, "float8[]"),
    (Integer, "bigint[]"),
    (String, "text[]"),
)
#: Rows per statement on SQLite (its limit on bound parameters is 32,766).
_SQLITE_ROWS = 500

_Processor = Callable[[Any], Any]


class _Binder:
    """Bind row tuples through their columns' SQLAlchemy types, as an ORM insert would.

    Args:
        dialect: the engine's dialect.
        columns: each row's columns, in the order of its values.
    """

    def __init__(self, dialect: Dialect, columns: Sequence[Column[Any]]) -> None:
        self._binds: list[tuple[int, _Processor]] = []
        for index, column in enumerate(columns):
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                self._binds.append((index, processor))
        #: PostgreSQL: ``unnest(%s::text[], …)``, the rows as a table of typed arrays.
        self.unnest = (
            f"unnest({', '.join(f'%s::{_pg_array(column.type)}' for column in columns)})"
            if dialect.name == "postgresql"
            else ""
        )

    def rows(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        bound = [list(row) for row in rows]
        for index, processor in self._binds:
            for row in bound:
                row[index] = processor(row[index])
        return bound

    def arrays(self, rows: Sequence[Sequence[Any]]) -> list[list[Any]]:
        """The bound rows as one list per column (the arrays :attr:`unnest` takes)."""
        return [list(values) for values in zip(*self.rows(rows), strict=True)]


class _BulkInsert:
    """``INSERT INTO table (columns) … <tail>`` for many rows, as SQL for the driver.

    Args:
        dialect: the engine's dialect.
        table: the table.
        columns: the inserted columns, in the order of each row's values.
        tail: what follows the values (``ON CONFLICT …`` and ``RETURNING …``).
        returning: the columns ``tail`` returns (their values come back through their
            types' result processors, as from a SQLAlchemy query).
    """

    def __init__(
        self,
        dialect: Dialect,
        table: Table,
        columns: Sequence[str],
        tail: str,
        returning: Sequence[str] = (),
    ) -> None:
        self._dialect = dialect.name
        self.binder = _Binder(dialect, [table.c[name] for name in columns])
        self._results: list[tuple[int, _Processor]] = []
        for index, name in enumerate(returning):
            processor = table.c[name].type.dialect_impl(dialect).result_processor(dialect, None)
            if processor is not None:
                self._results.append((index, processor))
        head = f"INSERT INTO {table.name} ({', '.join(columns)}) "
        if dialect.name == "postgresql":
            # Names come from our own tables, never from input.
            self._pg_sql = f"{head}SELECT * FROM {self.binder.unnest} {tail}"  # noqa: S608
        elif dialect.name == "sqlite":
            self._head, self._tail = head, tail
            self._group = "(" + ", ".join("?" for _ in columns) + ")"
            self._sqlite_sql: dict[int, str] = {}
        else:
            raise NotImplementedError(
                f"qunpulse supports SQLite and PostgreSQL, not {dialect.name}"
            )

    def run(self, connection: Connection, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
        """Insert ``rows`` (tuples in column order); return the ``RETURNING`` rows."""
        if not rows:
            return []
        if self._dialect == "postgresql":
            columns = tuple(self.binder.arrays(rows))
            returned = [tuple(r) for r in connection.exec_driver_sql(self._pg_sql, columns)]
        else:
            bound = self.binder.rows(rows)
            returned = []
            for start in range(0, len(bound), _SQLITE_ROWS):
                chunk = bound[start : start + _SQLITE_ROWS]
                flat = tuple(value for row in chunk for value in row)
                result = connection.exec_driver_sql(self._sqlite(len(chunk)), flat)
                returned += [tuple(r) for r in result]
        if self._results and returned:
            mutable = [list(row) for row in returned]
            for index, processor in self._results:
                for row in mutable:
                    row[index] = processor(row[index])
            returned = [tuple(row) for row in mutable]
        return returned

    def _sqlite(self, count: int) -> str:
        sql = self._sqlite_sql.get(count)
        if sql is None:
            sql = f"{self._head}VALUES {', '.join([self._group] * count)} {self._tail}"
            self._sqlite_sql[count] = sql
        return sql


def _pg_array(sql_type: Any) -> str:
    impl = getattr(sql_type, "impl_instance", sql_type)  # a TypeDecorator's own type
    for kind, array in _PG_ARRAYS:
        if isinstance(impl, kind):
            return array
    raise NotImplementedError(f"no PostgreSQL array type for {sql_type!r}")


_CLAIM_COLUMNS = ("platform", "event_key", "bot_id", "received_at")
_MEMBER_COLUMNS = ("platform", "user_id", "display_name", "opted_out", "is_bot", "created_at")
_MESSAGE_COLUMNS = (
    "platform",
    "platform_msg_id",
    "group_id",
    "member_id",
    "msg_type",
    "text",
    "sent_at",
    "is_command",
)


class _Statements:
    """The writer's hot statements for one dialect (built once per :class:`EventStore`)."""

    def __init__(self, dialect: Dialect) -> None:
        self.claim = _BulkInsert(
            dialect,
            _INBOUND,
            _CLAIM_COLUMNS,
            "ON CONFLICT DO NOTHING RETURNING platform, event_key",
        )
        self.members = _BulkInsert(
            dialect,
            _MEMBER,
            _MEMBER_COLUMNS,
            "ON CONFLICT (platform, user_id) DO UPDATE SET display_name = "
            "coalesce(excluded.display_name, member.display_name) "
            "RETURNING id, platform, user_id, display_name",
        )
        self.messages = _BulkInsert(
            dialect,
            _MESSAGE,
            _MESSAGE_COLUMNS,
            "ON CONFLICT DO NOTHING RETURNING platform, platform_msg_id",
        )
        #: The earliest time each member was seen in each group: the upsert keeps the
        #: earlier of the stored and the new time.
        self.seen = _BulkInsert(
            dialect,
            _GROUP_MEMBER,
            ("group_id", "member_id", "first_seen_at"),
            "ON CONFLICT (group_id, member_id) DO UPDATE SET first_seen_at = CASE WHEN "
            "excluded.first_seen_at < group_member.first_seen_at THEN excluded.first_seen_at "
            "ELSE group_member.first_seen_at END "
            "RETURNING group_id, member_id, first_seen_at",
            returning=("group_id", "member_id", "first_seen_at"),
        )
        self.store_messages = (
            _StoreMessages(dialect, self.claim.binder) if dialect.name == "postgresql" else None
        )


class _StoreMessages:
    """PostgreSQL: a batch of messages into known groups, as one statement.

    What :class:`_Writer` does in four statements, as data-modifying ``WITH`` queries:
    claim the events (``RETURNING`` names the new ones), upsert the senders of new events
    that the caches do not know, insert the new events' messages, and record each
    member's first sighting in the group where the caches do not know an earlier one.
    A ``WITH`` query runs exactly once whether or not the outer query reads it. Sent
    alone in autocommit mode the statement is its own transaction: one round trip where
    the general path takes six to eight (the pool's ping, ``BEGIN``, the statements,
    ``COMMIT``). It returns, as ``(kind, …)`` rows, what the caches learn: the new
    claims, the upserted members and the first sightings as stored. Members and
    sightings are upserted in key order, so that two servers writing the same rows take
    their locks in the same order (no deadlock).

    Args:
        dialect: a PostgreSQL dialect.
        claims: binds claim rows (``inbound_event`` columns, :data:`_CLAIM_COLUMNS`).
    """

    def __init__(self, dialect: Dialect, claims: _Binder) -> None:
        self.claims = claims
        key = Column("event_key", String())
        self.people = _Binder(
            dialect,
            [_MEMBER.c[name] for name in _MEMBER_COLUMNS] + [key, Column("position", Integer())],
        )
        self.messages = _Binder(
            dialect,
            [_MESSAGE.c[name] for name in _MESSAGE_COLUMNS]
            + [key, Column("user_id", String()), Column("note_seen", Boolean())],
        )
        self._first_seen = _GROUP_MEMBER.c.first_seen_at.type.dialect_impl(
            dialect
        ).result_processor(dialect, None)
        members = ", ".join(_MEMBER_COLUMNS)
        messages = ", ".join(_MESSAGE_COLUMNS)
        stored = ", ".join(f"m.{name}" for name in _MESSAGE_COLUMNS).replace(
            "m.member_id", "coalesce(m.member_id, people.id)"
        )
        # Names come from our own tables, never from input.
        self.sql = f"""WITH claimed AS (
    INSERT INTO inbound_event ({", ".join(_CLAIM_COLUMNS)})
    SELECT * FROM {claims.unnest}
    ON CONFLICT DO NOTHING
    RETURNING platform, event_key
), people AS (
    INSERT INTO member ({members})
    SELECT DISTINCT ON (platform, user_id) {members}
    FROM {self.people.unnest} AS p ({members}, event_key, position)
    JOIN claimed USING (platform, event_key)
    ORDER BY platform, user_id, display_name IS NULL, position DESC
    ON CONFLICT (platform, user_id) DO UPDATE
    SET display_name = coalesce(excluded.display_name, member.display_name)
    RETURNING id, platform, user_id, display_name
), incoming AS (
    SELECT * FROM {self.messages.unnest}
    AS m ({messages}, event_key, user_id, note_seen)
), stored AS (
    INSERT INTO message ({messages})
    SELECT {stored}
    FROM incoming AS m
    JOIN claimed USING (platform, event_key)
    LEFT JOIN people ON people.platform = m.platform AND people.user_id = m.user_id
    ON CONFLICT DO NOTHING
    RETURNING platform, platform_msg_id, group_id, member_id, sent_at
), seen AS (
    INSERT INTO group_member (group_id, member_id, first_seen_at)
    SELECT s.group_id, s.member_id, min(s.sent_at)
    FROM stored AS s JOIN incoming AS m USING (platform, platform_msg_id)
    WHERE m.note_seen
    GROUP BY s.group_id, s.member_id
    ORDER BY s.group_id, s.member_id
    ON CONFLICT (group_id, member_id) DO UPDATE SET first_seen_at = CASE
        WHEN excluded.first_seen_at < group_member.first_seen_at
        THEN excluded.first_seen_at ELSE group_member.first_seen_at END
    RETURNING group_id, member_id, first_seen_at
)
SELECT 'claim', NULL::bigint, NULL::bigint, platform, event_key, NULL, NULL::timestamp
FROM claimed
UNION ALL SELECT 'member', id, NULL, platform, user_id, display_name, NULL FROM people
UNION ALL SELECT 'seen', group_id, member_id, NULL, NULL, NULL, first_seen_at FROM seen
"""  # noqa: S608

    def parameters(self, plan: _MessagesPlan) -> tuple[list[Any], ...]:
        """The statement's arrays (one per column of each kind of row)."""
        return (
            *_arrays(self.claims, plan.claims, len(_CLAIM_COLUMNS)),
            *_arrays(self.people, plan.people, len(_MEMBER_COLUMNS) + 2),
            *_arrays(self.messages, plan.messages, len(_MESSAGE_COLUMNS) + 3),
        )

    def learn(self, rows: Iterable[Sequence[Any]], caches: _Caches) -> set[tuple[str, str]]:
        """Put the returned members and sightings in ``caches``; return the new claims."""
        claimed = set()
        for kind, first_id, second_id, platform, key, name, at in rows:
            if kind == "claim":
                claimed.add((platform, key))
            elif kind == "member":
                caches.members[(platform, key)] = (first_id, name)
            else:
                seen = at if self._first_seen is None else self._first_seen(at)
                caches.seen[(first_id, second_id)] = seen
        return claimed


def _arrays(binder: _Binder, rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    return binder.arrays(rows) if rows else [[] for _ in range(width)]
