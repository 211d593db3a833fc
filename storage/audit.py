"""The audit log: which admin action touched which people's data, and when.

Every privacy action (``forget``, ``optout``, ``optin``), every ``export`` and every
``import`` calls :func:`record_audit`, inside the same transaction as the change where
there is one, so that the log and the data cannot disagree.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select
from sqlalchemy.engine import Connection

from storage.models import AuditEntry, utc_now

_AUDIT = AuditEntry.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    at: datetime
    action: str
    target: str
    detail: dict[str, Any]


def record_audit(
    connection_or_engine: Connection | Engine,
    action: str,
    target: str,
    detail: Mapping[str, Any] | None = None,
    *,
    at: datetime | None = None,
) -> None:
    """Append one entry to the audit log.

    Args:
        connection_or_engine: a connection inside the caller's transaction (preferred:
            the entry commits or rolls back with the change), or an engine (its own
            transaction).
        action: what was done: ``forget``, ``purge``, ``optout``, ``optin``, ``export``,
            ``import``, ``retention``.
        target: what it touched, ``platform:user_id`` or ``platform:chat_id`` (or a file).
        detail: counts and options as a JSON-able mapping; never message text or secrets.
        at: when (default: now, UTC).
    """
    row = {
        "at": at or utc_now(),
        "action": action,
        "target": target[:300],
        "detail": json.dumps(dict(detail or {}), ensure_ascii=False, sort_keys=True, default=str),
    }
    if isinstance(connection_or_engine, Engine):
        with connection_or_engine.begin() as connection:
            connection.execute(insert(_AUDIT), [row])
    else:
        connection_or_engine.execute(insert(_AUDIT), [row])


def list_audit(engine: Engine, *, limit: int = 100, action: str | None = None) -> list[AuditRecord]:
    """The newest ``limit`` entries (optionally of one action), newest first."""
    query = select(_AUDIT).order_by(_AUDIT.c.at.desc(), _AUDIT.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(_AUDIT.c.action == action)
    with engine.connect() as connection:
        return [
            AuditRecord(row.at, row.action, row.target, json.loads(row.detail))
            for row in connection.execute(query)
        ]
