"""Write imported history: messages in bulk, recalls, orders and the WeCom archive cursor.

Imported messages are written by :class:`MessageImporter`, a lean bulk path beside the
live writer (:class:`storage.ingest.EventStore`) that stores the same rows under the same
unique keys: ``inbound_event (platform, "msg:" + id)`` claims a message once, whether it
came live or from a file, so a re-run, an overlapping file or a message also received
live is stored once, and a message whose sender was purged is never brought back.
Everything here is safe to repeat: orders have a unique key, a recall only ever sets
``recalled_at`` once, and the archive cursor only moves forward.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import repeat
from operator import add, itemgetter
from typing import Any, NamedTuple

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from storage.ingest import is_command
from storage.models import ArchiveCursor, InboundEvent, Member, Message, Order, utc_now
from storage.upsert import insert_for

_MEMBER = Member.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_ORDER = Order.__table__  # type: ignore[attr-defined]
_CURSOR = ArchiveCursor.__table__  # type: ignore[attr-defined]
_INBOUND = InboundEvent.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class Recall:
    """A message its sender recalled (撤回), named by the platform's message id."""

    platform: str
    message_id: str
    recalled_at: datetime


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order as imported; amounts in integer fen (分)."""

    platform: str
    order_id: str
    user_id: str
    amount_fen: int
    cost_fen: int | None
    status: str
    paid_at: datetime


def apply_recalls(connection: Connection, recalls: Sequence[Recall]) -> list[bool]:
    """Mark recalled messages; say for each recall whether it changed a message.

    A recall of a message already marked, or of one never stored, changes nothing.
    """
    changed: list[bool] = []
    for recall in recalls:
        result = connection.execute(
            update(_MESSAGE)
            .where(
                _MESSAGE.c.platform == recall.platform,
                _MESSAGE.c.platform_msg_id == recall.message_id,
                _MESSAGE.c.recalled_at.is_(None),
            )
            .values(recalled_at=recall.recalled_at)
        )
        changed.append(result.rowcount > 0)
    return changed


class OrderStore:
    """Insert orders; an order id seen before (per platform) is a duplicate, not an error."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._members: dict[tuple[str, str], int] = {}

    def store(self, orders: Sequence[OrderRow]) -> list[bool]:
        """Store ``orders`` in one transaction; ``True`` for each order that was new.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the transaction failed; nothing was stored.
        """
        members = dict(self._members)
        now = utc_now()
        new: list[bool] = []
        with self._engine.begin() as connection:
            for order in orders:
                member_id = _member_id(connection, members, order.platform, order.user_id, now)
                inserted = connection.execute(
                    insert_for(connection, _ORDER)
                    .values(
                        platform=order.platform,
                        order_id=order.order_id,
                        member_id=member_id,
                        amount_fen=order.amount_fen,
                        cost_fen=order.cost_fen,
                        status=order.status,
                        paid_at=order.paid_at,
                        imported_at=now,
                    )
                    .on_conflict_do_nothing()
                    .returning(_ORDER.c.id)
                ).first()
                new.append(inserted is not None)
        self._members = members
        return new


def _member_id(
    connection: Connection,
    cache: dict[tuple[str, str], int],
    platform: str,
    user_id: str,
    now: datetime,
) -> int:
    cached = cache.get((platform, user_id))
    if cached is not None:
        return cached
    connection.execute(
        insert_for(connection, _MEMBER)
        .values(
            platform=platform,
            user_id=user_id,
            display_name=None,
            is_bot=False,
            opted_out=False,
            created_at=now,
        )
        .on_conflict_do_nothing()
    )
    member_id = int(
        connection.execute(
            select(_MEMBER.c.id).where(_MEMBER.c.platform == platform, _MEMBER.c.user_id == user_id)
        ).scalar_one()
    )
    cache[(platform, user_id)] = member_id
    return member_id


def archive_seq(engine: Engine, corp_id: str) -> int:
    """The seq of the last archive record stored for ``corp_id`` (0 before the first pull)."""
    with engine.connect() as connection:
        seq = connection.execute(
            select(_CURSOR.c.seq).where(_CURSOR.c.corp_id == corp_id)
        ).scalar_one_or_none()
    return int(seq or 0)


def advance_archive_seq(engine: Engine, corp_id: str, seq: int) -> None:
    """Record that every archive record up to ``seq`` is stored; never moves backwards."""
    with engine.begin() as connection:
        insert = insert_for(connection, _CURSOR).values(
            corp_id=corp_id, seq=seq, updated_at=utc_now()
        )
        connection.execute(
            insert.on_conflict_do_update(
                index_elements=["corp_id"],
                set_={"seq": insert.excluded.seq, "updated_at": insert.excluded.updated_at},
                where=_CURSOR.c.seq < insert.excluded.seq,
            )
        )


# --- messages in bulk ---------------------------------------------------------------------

#: ``inbound_event.event_key`` of a message is this prefix and the platform's message id,
#: exactly as the live path claims it (``bot.events.MessageEvent.dedupe_key``).
MESSAGE_KEY_PREFIX = "msg:"
#: Rows per multi-row ``VALUES`` on SQLite: 4 columns x 200 stays under the 999
#: parameters that SQLite builds before 3.32 allow.
_SQLITE_ROWS_PER_STATEMENT = 200
#: Keys per ``IN (…)`` list on SQLite, for the same reason.
_SQLITE_KEYS_PER_QUERY = 500
#: SQLite's page cache for the import's connection, in KiB (64 MiB; the default is 2 MiB).
_SQLITE_IMPORT_CACHE_KIB = 65_536
#: Pages of write-ahead log after which the import's connection checkpoints (64 MiB of
#: 4 KiB pages; the default is 1,000).
_SQLITE_IMPORT_WAL_PAGES = 16_384
#: Member (and group) ids an import keeps between chunks; beyond, the cache starts afresh.
_CACHE_LIMIT = 100_000
#: A prepared message's stored time.
_STORED_TIME = itemgetter(9)


class ImportedMessage(NamedTuple):
    """One group message read from a history file: a plain tuple, as imports hold millions."""

    platform: str
    message_id: str
    chat_id: str
    chat_name: str | None
    #: ``full`` when the file holds every message of the group, else ``at_mentions_only``.
    source: str
    sender_id: str
    sender_name: str | None
    msg_type: str
    text: str | None
    sent_at: datetime


#: A message as :class:`PreparedChunk` holds it: ``(platform, message id, chat id, chat
#: name, source, sender id, sender name, type, text, sent_at as stored, is command)``.
PreparedMessage = tuple[str, str, str, str | None, str, str, str | None, str, str | None, str, bool]


class PreparedChunk(NamedTuple):
    """A chunk of messages and everything derived from it alone, ready for
    :meth:`MessageImporter.store_prepared` (see :func:`prepare`)."""

    #: The first message of each key, in file order.
    messages: list[PreparedMessage]
    #: Their ``(platform, event key)``, sorted: the claim visits the unique index in order.
    keys: list[tuple[str, str]]
    #: ``(platform, chat id, name, source)`` of each group: the last name given, ``full``
    #: if any message says so.
    groups: list[tuple[str, str, str | None, str]]
    #: ``(platform, user id, name)`` of each sender: the last name given.
    members: list[tuple[str, str, str | None]]
    #: ``(platform, chat id, user id, time as stored)``: each sender's earliest message
    #: in each group.
    sightings: list[tuple[str, str, str, str]]


def prepare(messages: Iterable[ImportedMessage]) -> PreparedChunk:
    """The messages with everything that needs no database worked out: a message
    repeated in the chunk is dropped, the time is the UTC text SQLite stores
    (:func:`sqlite_time`, which PostgreSQL reads as its timestamp), commands are marked,
    and what the chunk says of its groups and senders is gathered.

    An import prepares chunks in its reader process, so that the writing process, which
    the database keeps busy, does only what needs ids; a chunk is plain tuples of strings,
    what passes between processes fastest. Repeated values (platforms, chats, senders,
    names, types) are interned: one object each, ``marshal`` writes them once and the
    writer's dictionaries find them by identity.
    """
    intern = sys.intern
    rows = [
        (
            intern(platform),
            message_id,
            intern(chat_id),
            chat_name and intern(chat_name),
            intern(source),
            intern(sender_id),
            sender_name and intern(sender_name),
            intern(msg_type),
            text,
            sqlite_time(sent_at),
            is_command(text),
        )
        for (
            platform,
            message_id,
            chat_id,
            chat_name,
            source,
            sender_id,
            sender_name,
            msg_type,
            text,
            sent_at,
        ) in messages
    ]
    # The first of each message, in file order (a dict built backwards keeps the first);
    # a chunk without repeats (the usual one) stays as it is.
    ids = [(row[0], row[1]) for row in rows]
    first = dict(zip(reversed(ids), reversed(rows), strict=True))
    if len(first) < len(rows):
        rows = [first[key] for key in dict.fromkeys(ids)]
    return _prepared(rows)


def _prepared(messages: list[PreparedMessage]) -> PreparedChunk:
    """The chunk of ``messages`` (distinct ones, in file order)."""
    group_names: dict[tuple[str, str], str | None] = dict.fromkeys(
        (row[0], row[2]) for row in messages
    )
    group_names.update({(row[0], row[2]): row[3] for row in messages if row[3] is not None})
    full = {(row[0], row[2]) for row in messages if row[4] == "full"}
    member_names: dict[tuple[str, str], str | None] = dict.fromkeys(
        (row[0], row[5]) for row in messages
    )
    member_names.update({(row[0], row[5]): row[6] for row in messages if row[6] is not None})
    # The stored text orders as the time does: over the messages latest first, each
    # sender's sighting in each group ends on its earliest.
    latest_first = sorted(messages, key=_STORED_TIME, reverse=True)
    earliest = {(row[0], row[2], row[5]): row[9] for row in latest_first}
    return PreparedChunk(
        messages,
        sorted((row[0], MESSAGE_KEY_PREFIX + row[1]) for row in messages),
        [
            (platform, chat_id, name, "full" if (platform, chat_id) in full else "at_mentions_only")
            for (platform, chat_id), name in group_names.items()
        ],
        [(platform, user_id, name) for (platform, user_id), name in member_names.items()],
        [(platform, chat_id, user_id, at) for (platform, chat_id, user_id), at in earliest.items()],
    )


class MessageImporter:
    """Store imported messages chunk by chunk, one transaction per chunk, on one connection.

    Each chunk costs a handful of statements whatever its size: claim the messages'
    event keys (``INSERT … ON CONFLICT DO NOTHING``: the unique key, not a lookup,
    decides what is new; on SQLite ``executemany`` whose row count says "all new" or
    "none new", and only a chunk partly new is claimed again with ``RETURNING`` to learn
    which), upsert the groups and members of the claimed messages,
    insert the messages (DB-API ``executemany`` on SQLite; one ``INSERT … SELECT FROM
    unnest(…)`` on PostgreSQL) and record when each member was first seen in each group.
    The rows and their values are those :class:`storage.ingest.EventStore` stores for the
    same messages (a test holds the two paths to that), so the sentiment worker scores
    imported texts like live ones.

    Member and group ids, and the earliest sighting of each member in each group, are
    cached between chunks (at most :data:`_CACHE_LIMIT` of each, so memory stays flat
    however long the file); a chunk that fails on a foreign key, because another process
    purged a cached member meanwhile, is retried once without the caches, as the live
    path does.
    """

    def __init__(self, engine: Engine, bot_id: str) -> None:
        self._connection = engine.connect()
        dialect = self._connection.dialect
        self._sql: _BulkSql
        if dialect.name == "sqlite":
            self._sql = _SqliteBulk(self._connection)
        elif dialect.name == "postgresql":
            self._sql = _PostgresBulk(self._connection)
        else:
            self._connection.close()
            raise NotImplementedError(
                f"qunpulse supports SQLite and PostgreSQL, not {dialect.name}"
            )
        self._bot_id = bot_id
        #: Ids (and names) committed by earlier chunks: (platform, user id) → (id, name).
        self._members: dict[tuple[str, str], tuple[int, str | None]] = {}
        #: (platform, chat id) → (id, name, source).
        self._groups: dict[tuple[str, str], tuple[int, str | None, str]] = {}
        #: (group id, member id) → the earliest sighting this import recorded (as stored).
        self._seen: dict[tuple[int, int], Any] = {}
        self._new_members: dict[tuple[str, str], tuple[int, str | None]] = {}
        self._new_groups: dict[tuple[str, str], tuple[int, str | None, str]] = {}
        self._new_seen: dict[tuple[int, int], Any] = {}
        # The column type's own conversion for this database, as SQLAlchemy applies it
        # to the live path's statements (SQLite: fixed-width text; PostgreSQL: naive UTC);
        # on SQLite the same text from two C calls, as a million rows call it a million times.
        time_type = _MESSAGE.c.sent_at.type.dialect_impl(dialect)
        self._time: Callable[[datetime], Any] = (
            sqlite_time if dialect.name == "sqlite" else time_type.bind_processor(dialect) or _same
        )

    def close(self) -> None:
        """Give the connection back to the pool (as it was)."""
        try:
            self._sql.restore()
        except SQLAlchemyError:
            self._connection.invalidate()  # never back to the pool with import settings
        finally:
            self._connection.close()

    def __enter__(self) -> MessageImporter:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def store(self, messages: Sequence[ImportedMessage]) -> int:
        """Store one chunk in one transaction; return how many of its messages were new.

        A message stored before (by an earlier import, or received live) and a message
        repeated within the chunk are duplicates.

        Raises:
            sqlalchemy.exc.SQLAlchemyError: the transaction failed; nothing of the chunk
                was stored.
        """
        return self.store_prepared(prepare(messages))

    def store_prepared(self, chunk: PreparedChunk) -> int:
        """:meth:`store` for a chunk already through :func:`prepare`; return how many of
        ``chunk.messages`` were new."""
        if not chunk.messages:
            return 0
        try:
            return self._store_chunk(chunk)
        except IntegrityError:
            # A cached id may name a row another process deleted meanwhile (`qunpulse
            # member forget --purge`): forget every cached id and try once more.
            if not (self._members or self._groups):
                raise
            self._members, self._groups, self._seen = {}, {}, {}
            return self._store_chunk(chunk)

    def _store_chunk(self, chunk: PreparedChunk) -> int:
        now = self._time(utc_now())
        self._new_members, self._new_groups, self._new_seen = {}, {}, {}
        transaction = self._connection.begin()
        try:
            claimed = self._sql.claim_all_or_none(chunk.keys, self._bot_id, now)
            if claimed is None:  # some keys were new, some not: claim again, asking which
                transaction.rollback()
                transaction = self._connection.begin()
                claimed = self._sql.claim(chunk.keys, self._bot_id, now)
            if len(claimed) < len(chunk.messages):
                # Only what the claimed messages say of their groups and senders counts.
                chunk = _prepared(
                    [
                        row
                        for row in chunk.messages
                        if (row[0], MESSAGE_KEY_PREFIX + row[1]) in claimed
                    ]
                )
            if chunk.messages:
                self._store_fresh(chunk, now)
        except BaseException:
            transaction.rollback()
            raise
        transaction.commit()
        # Only ids a committed transaction saw reach the caches; they stay bounded.
        if len(self._members) + len(self._new_members) > _CACHE_LIMIT:
            self._members = {}
        self._members.update(self._new_members)
        if len(self._groups) + len(self._new_groups) > _CACHE_LIMIT:
            self._groups = {}
        self._groups.update(self._new_groups)
        if len(self._seen) + len(self._new_seen) > _CACHE_LIMIT:
            self._seen = {}
        self._seen.update(self._new_seen)
        return len(chunk.messages)

    def _store_fresh(self, chunk: PreparedChunk, now: Any) -> None:
        """Groups, members, messages and first sightings of newly claimed messages.

        Built with comprehensions, not a loop of statements: this runs once per message,
        millions of times in a big import.
        """
        groups = self._resolve_groups(chunk.groups, now)
        members = self._resolve_members(chunk.members, now)
        self._sql.insert_messages(
            [
                (
                    platform,
                    message_id,
                    groups[platform, chat_id],
                    members[platform, sender_id],
                    msg_type,
                    text,
                    sent_at,
                    command,
                )
                for (
                    platform,
                    message_id,
                    chat_id,
                    _,
                    _,
                    sender_id,
                    _,
                    msg_type,
                    text,
                    sent_at,
                    command,
                ) in chunk.messages
            ]
        )
        # A sighting is recorded unless an earlier chunk recorded one at least as early
        # (files usually run forwards).
        sooner = []
        for platform, chat_id, user_id, at in chunk.sightings:
            pair = (groups[platform, chat_id], members[platform, user_id])
            known = self._seen.get(pair)
            if known is None or at < known:
                sooner.append((*pair, at))
                self._new_seen[pair] = at
        self._sql.execute_many(
            "INSERT INTO group_member (group_id, member_id, first_seen_at) VALUES (?, ?, ?) "
            "ON CONFLICT (group_id, member_id) DO UPDATE "
            "SET first_seen_at = excluded.first_seen_at "
            "WHERE excluded.first_seen_at < group_member.first_seen_at",
            sooner,
        )

    def _resolve_groups(
        self, groups: list[tuple[str, str, str | None, str]], now: Any
    ) -> dict[tuple[str, str], int]:
        """Upsert the groups the cache does not know as they are: the last name given
        wins; a group only ever becomes ``full``, never back (as on the live path)."""
        ids: dict[tuple[str, str], int] = {}
        stale: dict[tuple[str, str], tuple[str | None, str]] = {}
        for platform, chat_id, name, source in groups:
            key = (platform, chat_id)
            known = self._groups.get(key)
            if (
                known is None
                or (name is not None and name != known[1])
                or (source == "full" and known[2] != "full")
            ):
                stale[key] = (name, source)
            else:
                ids[key] = known[0]
        if stale:
            self._sql.execute_many(
                "INSERT INTO chat_group (platform, chat_id, name, source, created_at) "
                "VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (platform, chat_id) DO UPDATE "
                "SET name = coalesce(excluded.name, chat_group.name), "
                "source = CASE WHEN excluded.source = 'full' THEN 'full' "
                "ELSE chat_group.source END "
                "WHERE (excluded.name IS NOT NULL "
                "AND (chat_group.name IS NULL OR chat_group.name <> excluded.name)) "
                "OR (excluded.source = 'full' AND chat_group.source <> 'full')",
                [(p, c, name, source, now) for (p, c), (name, source) in stale.items()],
            )
            for key, (group_id, name, source) in self._sql.rows(
                "chat_group", "chat_id", "name, source", stale
            ).items():
                ids[key] = int(group_id)
                self._new_groups[key] = (int(group_id), name, source)
        return ids

    def _resolve_members(
        self, members: list[tuple[str, str, str | None]], now: Any
    ) -> dict[tuple[str, str], int]:
        """Upsert the senders the cache does not know by that name: the last name given
        wins, no name keeps the old one (as on the live path)."""
        ids: dict[tuple[str, str], int] = {}
        stale: dict[tuple[str, str], str | None] = {}
        for platform, user_id, name in members:
            key = (platform, user_id)
            known = self._members.get(key)
            if known is None or (name is not None and name != known[1]):
                stale[key] = name
            else:
                ids[key] = known[0]
        if stale:
            self._sql.execute_many(
                "INSERT INTO member "
                "(platform, user_id, display_name, opted_out, is_bot, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (platform, user_id) DO UPDATE "
                "SET display_name = excluded.display_name "
                "WHERE excluded.display_name IS NOT NULL "
                "AND (member.display_name IS NULL OR member.display_name <> excluded.display_name)",
                [(p, u, name, False, False, now) for (p, u), name in stale.items()],
            )
            for key, (member_id, name) in self._sql.rows(
                "member", "user_id", "display_name", stale
            ).items():
                ids[key] = int(member_id)
                self._new_members[key] = (int(member_id), name)
        return ids


def _same(value: Any) -> Any:
    return value


def sqlite_time(moment: datetime) -> str:
    """An aware time as SQLite stores it through :class:`storage.models.UTCDateTime`:
    naive UTC text in SQLAlchemy's ``YYYY-MM-DD HH:MM:SS.ffffff`` (a test holds the two
    equal)."""
    return moment.astimezone(UTC).isoformat(" ", "microseconds")[:26]


def _by_platform(keys: Iterable[tuple[str, str]]) -> dict[str, list[str]]:
    grouped: dict[str, list[str]] = {}
    for platform, value in keys:
        grouped.setdefault(platform, []).append(value)
    return grouped


def _slices(items: Sequence[Any], size: int) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class _BulkSql:
    """The few statements whose fastest form differs between the two databases.

    Statements are written with ``?`` placeholders; PostgreSQL's driver gets ``%s``.
    Every call goes through :meth:`Connection.exec_driver_sql`, so it runs in the
    connection's transaction and a driver error arrives as a SQLAlchemy error.
    """

    placeholder = "?"

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def restore(self) -> None:
        """Undo any per-connection setting made for the import."""

    def sql(self, statement: str) -> str:
        return statement if self.placeholder == "?" else statement.replace("?", self.placeholder)

    def execute_many(self, statement: str, rows: list[tuple[Any, ...]]) -> None:
        if rows:
            self.connection.exec_driver_sql(self.sql(statement), rows)

    def claim(self, keys: list[tuple[str, str]], bot_id: str, now: Any) -> set[tuple[str, str]]:
        """Insert ``(platform, event_key)`` into ``inbound_event``; return the new ones."""
        raise NotImplementedError

    def claim_all_or_none(
        self, keys: list[tuple[str, str]], bot_id: str, now: Any
    ) -> set[tuple[str, str]] | None:
        """Like :meth:`claim` where that is cheaper when all keys or none are new (a first
        import, a re-run); ``None`` when only some were new: then roll back and claim."""
        return self.claim(keys, bot_id, now)

    def insert_messages(self, rows: list[tuple[Any, ...]]) -> None:
        """Insert message rows (platform, id, group, member, type, text, time, command)."""
        raise NotImplementedError

    def rows(
        self, table: str, column: str, extra: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        """``(platform, value) → (id, *extra)`` of ``table`` rows keyed by
        ``(platform, column)``."""
        raise NotImplementedError


_SQLITE_CLAIM = (
    "INSERT INTO inbound_event (platform, event_key, bot_id, received_at) VALUES {rows} "
    "ON CONFLICT DO NOTHING RETURNING platform, event_key"
)


class _SqliteBulk(_BulkSql):
    """SQLite: ``executemany``, with two settings for the import's connection (put back
    when it ends). A page cache big enough for the indexes a long import keeps updating:
    the default 2 MiB makes a million-row import wait on reads and rewrite the same index
    pages chunk after chunk. And a checkpoint when the write-ahead log reaches the same
    size, not at every 4 MiB: each chunk rewrites pages all over the unique indexes, and
    each checkpoint copies them into the database file and waits for the disk. Neither
    touches durability: WAL and ``synchronous`` stay as :func:`storage.db.make_engine`
    set them, and a crash loses at most the chunk in flight."""

    def __init__(self, connection: Connection) -> None:
        super().__init__(connection)
        self._settings = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar_one()
            for name in ("cache_size", "wal_autocheckpoint")
        }
        connection.exec_driver_sql(f"PRAGMA cache_size = -{_SQLITE_IMPORT_CACHE_KIB}")
        connection.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {_SQLITE_IMPORT_WAL_PAGES}")
        connection.commit()

    def restore(self) -> None:
        for name, value in self._settings.items():
            self.connection.exec_driver_sql(f"PRAGMA {name} = {int(value)}")
        self.connection.commit()

    def claim_all_or_none(
        self, keys: list[tuple[str, str]], bot_id: str, now: Any
    ) -> set[tuple[str, str]] | None:
        # executemany cannot return rows, but its row count says how many were new.
        # In key order (prepare sorts them), each page of the unique index is visited
        # once per chunk. Each key + (bot_id, now): the rows are built in C.
        result = self.connection.exec_driver_sql(
            "INSERT INTO inbound_event (platform, event_key, bot_id, received_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT DO NOTHING",
            list(map(add, keys, repeat((bot_id, now)))),
        )
        if result.rowcount == len(keys):
            return set(keys)
        return set() if result.rowcount == 0 else None

    def claim(self, keys: list[tuple[str, str]], bot_id: str, now: Any) -> set[tuple[str, str]]:
        claimed: set[tuple[str, str]] = set()
        for part in _slices(keys, _SQLITE_ROWS_PER_STATEMENT):
            rows = ", ".join(["(?, ?, ?, ?)"] * len(part))
            statement = _SQLITE_CLAIM.format(rows=rows)
            values = [value for platform, key in part for value in (platform, key, bot_id, now)]
            result = self.connection.exec_driver_sql(statement, tuple(values))
            claimed.update((row[0], row[1]) for row in result)
        return claimed

    def insert_messages(self, rows: list[tuple[Any, ...]]) -> None:
        self.execute_many(
            "INSERT INTO message (platform, platform_msg_id, group_id, member_id, msg_type, "
            "text, sent_at, is_command) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            rows,
        )

    def rows(
        self, table: str, column: str, extra: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        found: dict[tuple[str, str], tuple[Any, ...]] = {}
        for platform, values in _by_platform(keys).items():
            for part in _slices(values, _SQLITE_KEYS_PER_QUERY):
                statement = (
                    f"SELECT {column}, id, {extra} FROM {table} WHERE platform = ? "  # noqa: S608 - our table names
                    f"AND {column} IN ({', '.join(['?'] * len(part))})"
                )
                for row in self.connection.exec_driver_sql(statement, (platform, *part)):
                    found[platform, row[0]] = tuple(row[1:])
        return found


class _PostgresBulk(_BulkSql):
    placeholder = "%s"

    def claim(self, keys: list[tuple[str, str]], bot_id: str, now: Any) -> set[tuple[str, str]]:
        platforms, event_keys = (list(column) for column in zip(*keys, strict=True))
        result = self.connection.exec_driver_sql(
            "INSERT INTO inbound_event (platform, event_key, bot_id, received_at) "
            "SELECT t.platform, t.event_key, %s, %s "
            "FROM unnest(%s::varchar[], %s::varchar[]) AS t(platform, event_key) "
            "ON CONFLICT DO NOTHING RETURNING platform, event_key",
            (bot_id, now, platforms, event_keys),
        )
        return {(row[0], row[1]) for row in result}

    def insert_messages(self, rows: list[tuple[Any, ...]]) -> None:
        if not rows:
            return
        columns = tuple(list(column) for column in zip(*rows, strict=True))
        self.connection.exec_driver_sql(
            "INSERT INTO message (platform, platform_msg_id, group_id, member_id, msg_type, "
            "text, sent_at, is_command) "
            "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::integer[], %s::integer[], "
            "%s::varchar[], %s::text[], %s::timestamp[], %s::boolean[]) "
            "ON CONFLICT DO NOTHING",
            columns,
        )

    def rows(
        self, table: str, column: str, extra: str, keys: Iterable[tuple[str, str]]
    ) -> dict[tuple[str, str], tuple[Any, ...]]:
        found: dict[tuple[str, str], tuple[Any, ...]] = {}
        for platform, values in _by_platform(keys).items():
            result = self.connection.exec_driver_sql(
                f"SELECT {column}, id, {extra} FROM {table} "  # noqa: S608 - our table names
                f"WHERE platform = %s AND {column} = ANY(%s)",
                (platform, values),
            )
            for row in result:
                found[platform, row[0]] = tuple(row[1:])
        return found
