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

    @property
    def dedupe_key(self) -> str:
        return f"member:{self.event_id}"


Event = MessageEvent | MembershipEvent
