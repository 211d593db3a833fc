"""The platform-neutral events every connection kind is normalised into.

Handlers, storage and analytics see only these types, never a platform's field names.
Every datetime here is timezone-aware (UTC as received from the platform).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal, NewType

PlatformName = Literal["wecom", "dingtalk", "feishu"]
ChatId = NewType("ChatId", str)
UserId = NewType("UserId", str)

ChatType = Literal["group", "private"]
#: Which messages of a group a connection sees: only @-mentions of the bot, or all.
Source = Literal["at_mentions_only", "full"]
MembershipChange = Literal["join", "leave", "removed"]
#: What happened to a group itself (not to its members).
GroupChange = Literal["created", "renamed", "disbanded"]
#: Notices that are not about one group: ``archive_ready`` (WeCom msgaudit_notify).
NoticeKind = Literal["archive_ready"]


@dataclass(frozen=True, slots=True)
class Chat:
    """Where an event happened."""

    chat_id: ChatId
    chat_type: ChatType
    name: str | None = None


@dataclass(frozen=True, slots=True)
class Person:
    """A platform user as the event names them."""

    user_id: UserId
    name: str | None = None
    is_bot: bool = False
    is_admin: bool = False


@dataclass(frozen=True, slots=True)
class ReplyRoute:
    """How to answer this event later, if the platform gave a way (response_url, sessionWebhook)."""

    url: str
    expires_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A message someone sent where the bot could see it."""

    platform: PlatformName
    bot_id: str
    #: The platform's message id: the key that makes redeliveries harmless.
    message_id: str
    chat: Chat
    sender: Person
    msg_type: str
    text: str | None
    sent_at: datetime
    source: Source
    #: True when the message @-mentioned this bot (always true for @-only connections).
    mentions_bot: bool = True
    reply: ReplyRoute | None = field(default=None, compare=False)

    @property
    def dedupe_key(self) -> str:
        return f"msg:{self.message_id}"


@dataclass(frozen=True, slots=True)
class MembershipEvent:
    """People joined, left or were removed from a group."""

    platform: PlatformName
    bot_id: str
    #: A key unique to this platform event, stable across redeliveries.
    event_id: str
    chat: Chat
    change: MembershipChange
    members: tuple[Person, ...]
    occurred_at: datetime
    operator: UserId | None = None
    #: The platform's roster version before and after this change (WeCom ``LastMemVer``,
    #: ``CurMemVer``), when it gives one: a gap means an event was lost.
    member_version: MemberVersion | None = None
    #: Set when this connection alone tells how complete the group's record is
    #: (Feishu: ``full``); ``None`` leaves the group's source as it is.
    source: Source | None = None

    @property
    def dedupe_key(self) -> str:
        return f"member:{self.event_id}"


@dataclass(frozen=True, slots=True)
class MemberVersion:
    """A roster version step reported with a membership change."""

    previous: str
    current: str


@dataclass(frozen=True, slots=True)
class GroupEvent:
    """A group was created, renamed or disbanded.

    For ``renamed``, ``chat.name`` is the new name when the platform sent it; ``None``
    means the platform only said "renamed" and a roster sync must fetch the name.
    """

    platform: PlatformName
    bot_id: str
    event_id: str
    chat: Chat
    change: GroupChange
    occurred_at: datetime
    operator: UserId | None = None

    @property
    def dedupe_key(self) -> str:
        return f"group:{self.event_id}"


@dataclass(frozen=True, slots=True)
class NoticeEvent:
    """A platform notice to act on later (e.g. new session-archive data is ready)."""

    platform: PlatformName
    bot_id: str
    event_id: str
    kind: NoticeKind
    occurred_at: datetime

    @property
    def dedupe_key(self) -> str:
        return f"notice:{self.event_id}"


Event = MessageEvent | MembershipEvent | GroupEvent | NoticeEvent
