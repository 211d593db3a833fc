"""Dashboard sign-in: signed links, signed session cookies, and who may see which group.

A link and a session are both ``BASE64URL(JSON) "." BASE64URL(HMAC-SHA256)``, signed
with the dashboard key and a purpose word (``link`` or ``session``), so one can never be
used as the other. A link carries a random nonce: the database records it when the link
is used, which makes each link single-use across processes. Times come in as
arguments, so tests move the clock instead of waiting.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import Engine

from config.settings import Settings
from storage.dashboard import stored_signing_key
from storage.queries import GroupRecord

Purpose = Literal["link", "session"]


class BadToken(ValueError):
    """A link or cookie is forged, damaged, expired or of the wrong kind.

    ``reason`` is a short word for ``/metrics`` (``malformed``, ``signature``,
    ``expired``, ``purpose``); it never carries the token.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in to the dashboard.

    Attributes:
        platform: the operator's platform (None for an admin).
        user_id: the operator's user id on it (None for an admin).
        admin: signed in with ``[dashboard] admin_token``: sees every group.
        groups: group ids granted at sign-in beyond the configured ones (the group in
            which a group admin asked, with ``operators_include_admins``).
    """

    platform: str | None
    user_id: str | None
    admin: bool = False
    groups: tuple[int, ...] = field(default=())


@dataclass(frozen=True, slots=True)
class Link:
    """A verified sign-in link."""

    viewer: Viewer
    nonce: str
    expires_at: datetime


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: str, purpose: Purpose, body: str) -> str:
    digest = hmac.new(key.encode(), f"{purpose}.{body}".encode(), hashlib.sha256).digest()
    return _b64(digest)


def _sign(key: str, purpose: Purpose, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode())
    return f"{body}.{_mac(key, purpose, body)}"


def _open(key: str, purpose: Purpose, token: str, now: datetime) -> dict[str, Any]:
    body, dot, mac = token.partition(".")
    if not dot or not body or not mac:
        raise BadToken("malformed")
    if not hmac.compare_digest(mac, _mac(key, purpose, body)):
        other: Purpose = "session" if purpose == "link" else "link"
        same_key_other_kind = hmac.compare_digest(mac, _mac(key, other, body))
        raise BadToken("purpose" if same_key_other_kind else "signature")
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error):
        raise BadToken("malformed") from None
    if not isinstance(payload, dict) or not isinstance(payload.get("e"), int):
        raise BadToken("malformed")
    if now.timestamp() >= payload["e"]:
        raise BadToken("expired")
    return payload


def _viewer_payload(viewer: Viewer) -> dict[str, Any]:
    return {"p": viewer.platform, "u": viewer.user_id, "a": viewer.admin, "g": list(viewer.groups)}


def _viewer(payload: dict[str, Any]) -> Viewer:
    groups = payload.get("g") or []
    if not isinstance(groups, list) or not all(isinstance(g, int) for g in groups):
        raise BadToken("malformed")
    return Viewer(payload.get("p"), payload.get("u"), bool(payload.get("a")), tuple(groups))


def make_link_token(key: str, viewer: Viewer, now: datetime, lifetime: timedelta) -> str:
    """A single-use sign-in token for ``viewer``, valid for ``lifetime`` from ``now``."""
    expires = int((now + lifetime).timestamp())
    return _sign(
        key, "link", _viewer_payload(viewer) | {"n": secrets.token_urlsafe(16), "e": expires}
    )


def read_link_token(key: str, token: str, now: datetime) -> Link:
    """Verify a sign-in token (not yet whether it was used: that is the database's job).

    Raises:
        BadToken: forged, damaged, expired, or a session cookie passed as a link.
    """
    payload = _open(key, "link", token, now)
    nonce = payload.get("n")
    if not isinstance(nonce, str) or not nonce:
        raise BadToken("malformed")
    return Link(_viewer(payload), nonce, datetime.fromtimestamp(payload["e"], UTC))


def make_session(key: str, viewer: Viewer, now: datetime, lifetime: timedelta) -> str:
    """The session cookie's value for ``viewer``."""
    return _sign(key, "session", _viewer_payload(viewer) | {"e": int((now + lifetime).timestamp())})


def read_session(key: str, value: str, now: datetime) -> Viewer:
    """The viewer of a session cookie.

    Raises:
        BadToken: forged, damaged, expired, or a link passed as a cookie.
    """
    return _viewer(_open(key, "session", value, now))


def signing_key(settings: Settings, engine: Engine, now: datetime) -> str:
    """``[dashboard] secret_key``, or the key generated and stored on first use."""
    configured = settings.dashboard.secret_key
    if configured is not None and configured.get_secret_value():
        return configured.get_secret_value()
    return stored_signing_key(engine, now)


def runs_group(settings: Settings, viewer: Viewer, group: GroupRecord) -> bool:
    """Whether ``viewer`` may see ``group``.

    The same people as for operator chat commands: ``[operators].<platform>`` run every
    group of their platform, ``[[groups]].operators`` their groups, and a group admin
    (with ``operators_include_admins``) the group they asked in.
    """
    if viewer.admin:
        return True
    if viewer.platform != group.platform or viewer.user_id is None:
        return False
    if viewer.user_id in getattr(settings.operators, group.platform, ()):
        return True
    if group.id in viewer.groups:
        return True
    return any(
        entry.platform == group.platform
        and entry.chat_id == group.chat_id
        and viewer.user_id in entry.operators
        for entry in settings.groups
    )


def groups_run_by(
    settings: Settings, viewer: Viewer, groups: Iterable[GroupRecord]
) -> list[GroupRecord]:
    """The groups among ``groups`` that ``viewer`` may see, in the given order."""
    return [g for g in groups if runs_group(settings, viewer, g)]


def admin_token_matches(settings: Settings, offered: str) -> bool:
    """Whether ``offered`` is ``[dashboard] admin_token`` (never true when that is unset)."""
    token = settings.dashboard.admin_token
    if token is None or not token.get_secret_value():
        return False
    return hmac.compare_digest(offered.encode(), token.get_secret_value().encode())


def public_link(public_url: str, token: str) -> str:
    """The sign-in URL under ``server.public_url``."""
    return f"{public_url.rstrip('/')}/dashboard/signin?token={token}"


def granted_groups(group: GroupRecord | None, is_operator: bool) -> Sequence[int]:
    """Groups to grant in a link beyond the configuration: where a group admin asked."""
    return (group.id,) if group is not None and is_operator else ()
