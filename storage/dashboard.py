"""What the dashboard keeps: its generated signing key and the sign-in links already used."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import Engine, delete, select
from sqlalchemy.exc import IntegrityError

from storage.models import DashboardLinkUse, DashboardSecret

_SECRET = DashboardSecret.__table__  # type: ignore[attr-defined]
_LINK_USE = DashboardLinkUse.__table__  # type: ignore[attr-defined]

SIGNING_KEY = "signing_key"


def stored_signing_key(engine: Engine, now: datetime) -> str:
    """The dashboard's signing key from the database, generated on first use.

    Two processes starting at once may both generate one; the primary key lets only
    the first insert win, and both then read the winner.
    """
    query = select(_SECRET.c.value).where(_SECRET.c.name == SIGNING_KEY)
    with engine.connect() as connection:
        found = connection.execute(query).scalar_one_or_none()
    if found is not None:
        return str(found)
    try:
        with engine.begin() as connection:
            connection.execute(
                _SECRET.insert().values(
                    name=SIGNING_KEY, value=secrets.token_urlsafe(48), created_at=now
                )
            )
    except IntegrityError:
        pass  # another process stored its key first: use that one
    with engine.connect() as connection:
        return str(connection.execute(query).scalar_one())


def use_link(engine: Engine, nonce: str, now: datetime, expires_at: datetime) -> bool:
    """Record that the link ``nonce`` was used; False if it had been used before.

    Rows of links that have expired anyway are deleted on the way, so the table stays
    as small as the links of the last ``link_minutes``.
    """
    try:
        with engine.begin() as connection:
            connection.execute(delete(_LINK_USE).where(_LINK_USE.c.expires_at < now))
            connection.execute(
                _LINK_USE.insert().values(nonce=nonce, used_at=now, expires_at=expires_at)
            )
    except IntegrityError:
        return False
    return True
