"""Store WeCom's daily customer-group statistics (a separate, labelled source)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from sqlalchemy import Engine

from storage.models import WecomGroupDailyStat
from storage.upsert import insert_for

_STAT = WecomGroupDailyStat.__table__  # type: ignore[attr-defined]


def store_daily_stats(
    engine: Engine,
    bot_id: str,
    owner: str,
    days: Sequence[tuple[datetime, Mapping[str, int]]],
    fetched_at: datetime,
) -> int:
    """Insert or refresh one owner's days (WeCom may revise a recent day); returns the count."""
    with engine.begin() as connection:
        for day, figures in days:
            insert = insert_for(connection, _STAT).values(
                bot_id=bot_id, owner=owner, day=day, fetched_at=fetched_at, **figures
            )
            updates = {name: insert.excluded[name] for name in (*figures, "fetched_at")}
            connection.execute(
                insert.on_conflict_do_update(
                    index_elements=["bot_id", "owner", "day"], set_=updates
                )
            )
    return len(days)
