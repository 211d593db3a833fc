"""Engines and migrations: SQLite (WAL, busy timeout) or PostgreSQL through psycopg 3."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    Column,
    Engine,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    create_engine,
    event,
    inspect,
    text,
)
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS = Path(__file__).with_name("migrations")
#: The newest migration (tests/test_storage.py checks it against Alembic's head): a
#: database already there is told so by one query, without loading Alembic.
HEAD = "0011"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine tuned for qunpulse on SQLite or PostgreSQL.

    SQLite gets WAL mode (readers never block the writer), a busy timeout so that a
    second process waits instead of failing, and enforced foreign keys.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(
            url, connect_args={"timeout": 30, "check_same_thread": False}, **kwargs
        )
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def alembic_config(engine: Engine) -> Config:
    # Alembic (and Mako under it) loads only when migrations run: `qunpulse stats` never needs it.
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["engine"] = engine
    return config


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every migration up to ``revision`` (idempotent).

    An empty database is created at ``HEAD`` from the models in one go instead (see
    :func:`_create_at_head`); a database with any table but no revision is left to
    Alembic, which knows where it stands.
    """
    if revision == "head":
        current = current_revision(engine)
        if current == HEAD:
            return
        if current is None and not inspect(engine).get_table_names():
            _create_at_head(engine)
            return
    from alembic import command

    command.upgrade(alembic_config(engine), revision)


def _create_at_head(engine: Engine) -> None:
    """Create every table from the models and record ``HEAD``, as Alembic's ``stamp`` would.

    Alembic's cookbook recipe for new databases: replaying eleven migrations (and loading
    Alembic to do it) took a quarter of a second of every first start, a fresh
    ``qunpulse import``'s and every test's. tests/test_storage.py holds the created
    schema identical to the migrated one, on SQLite and PostgreSQL.
    """
    from sqlmodel import SQLModel

    import storage.models  # noqa: F401 - registers the tables on SQLModel.metadata

    # Alembic's version table exactly as Alembic creates it (alembic.ddl.impl).
    version = Table(
        "alembic_version",
        MetaData(),
        Column("version_num", String(32), nullable=False),
        PrimaryKeyConstraint("version_num", name="alembic_version_pkc"),
    )
    with engine.begin() as connection:
        if engine.dialect.name == "sqlite":
            # Python's sqlite3 opens a transaction before DML only: without this, an
            # interrupted start would leave tables without a revision, which Alembic
            # then fails to create again.
            connection.exec_driver_sql("BEGIN")
        SQLModel.metadata.create_all(connection)
        version.create(connection)
        connection.execute(version.insert().values(version_num=HEAD))


def current_revision(engine: Engine) -> str | None:
    """The database's migration revision; ``None`` for a database qunpulse never touched."""
    try:
        with engine.connect() as connection:
            found = connection.execute(text("SELECT version_num FROM alembic_version")).scalar()
    except DBAPIError:
        return None
    return str(found) if found is not None else None


def ping(engine: Engine) -> None:
    """Raise if the database does not answer."""
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))
