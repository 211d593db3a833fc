"""Write imported history: recalls, orders and the WeCom archive cursor.

Messages themselves go through :class:`storage.ingest.EventStore`, so an imported
message and the same message received live share one unique key and are stored once.
Everything here is safe to repeat: orders have a unique key, a recall only ever sets
``recalled_at`` once, and the archive cursor only moves forward.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Engine, select, update
from sqlalchemy.engine import Connection

from storage.models import ArchiveCursor, Member, Message, Order, utc_now
from storage.upsert import insert_for

_MEMBER = Member.__table__  # type: ignore[attr-defined]
_MESSAGE = Message.__table__  # type: ignore[attr-defined]
_ORDER = Order.__table__  # type: ignore[attr-defined]
_CURSOR = ArchiveCursor.__table__  # type: ignore[attr-defined]


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
