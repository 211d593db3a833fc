"""Dialect-aware ``INSERT … ON CONFLICT`` for the two databases qunpulse runs on."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection


def insert_for(connection: Connection, table: Table | Any) -> Any:
    """Return an ``INSERT`` for ``table`` that supports ``on_conflict_do_*`` on this dialect.

    Raises:
        NotImplementedError: the connection is neither SQLite nor PostgreSQL.
    """
    name = connection.dialect.name
    if name == "sqlite":
        return sqlite.insert(table)
    if name == "postgresql":
        return postgresql.insert(table)
    raise NotImplementedError(f"qunpulse supports SQLite and PostgreSQL, not {name}")
