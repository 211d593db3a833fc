"""What a command handler receives (:class:`Context`) and returns (:class:`Answer`).

Handlers never see a platform module: they answer with markdown text, and the
dispatcher hands it to the bot's :class:`ReplyChannel`, which knows how that platform
takes a reply (WeCom ``response_url``, DingTalk ``sessionWebhook``, Feishu reply API).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Protocol

from sqlalchemy import Engine

from analytics.labels import Locale
from bot.events import MessageEvent
from config.settings import Settings
from handlers.parsing import Args
from storage.queries import GroupRecord

if TYPE_CHECKING:
    from handlers.registry import Command, Registry

Clock = Callable[[], datetime]


@dataclass(frozen=True, slots=True)
class Answer:
    """A handler's reply.

    Attributes:
        text: markdown (the subset WeCom, DingTalk and Feishu all render: bold, lists,
            line breaks); cut to the platform's byte limit on the way out.
        title: a short title (DingTalk shows it in the notification).
        private: must reach only the asker, never a group (``/silent``).
    """

    text: str
    title: str = "群脉"
    private: bool = False


class ReplyError(Exception):
    """The platform did not take the reply; the message says why (no secrets in it)."""


class ReplyChannel(Protocol):
    """How one bot answers a command it received. One implementation per connection kind.

    Implementations live in :mod:`bot.replies`; a new platform adds one module there.
    """

    #: The most UTF-8 bytes one reply may carry.
    max_bytes: int

    async def reply(self, event: MessageEvent, answer: Answer) -> None:
        """Answer in the chat the command came from.

        Raises:
            ReplyError: the platform refused it or the reply route has expired.
        """
        ...

    def can_send_private(self, event: MessageEvent) -> bool:
        """Whether :meth:`send_private` can reach the asker outside the group."""
        ...

    async def send_private(self, event: MessageEvent, answer: Answer) -> None:
        """Send to the asker alone (a 1:1 chat with the bot).

        Raises:
            ReplyError: the platform refused it, or there is no private channel.
        """
        ...


ReplyFn = Callable[[Answer], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Context:
    """Everything a command handler may use.

    Attributes:
        event: the command message (sender, chat, time).
        command: the command as registered.
        args: its typed arguments.
        group: the group the command is about (None for commands that need none).
        is_operator: whether the asker may use operator commands for ``group``.
        engine: the database (call it on a worker thread: ``asyncio.to_thread``).
        settings: validated settings.
        clock: the current time (aware).
        reply: send an extra answer now, before the handler returns its final one. On a
            WeCom AI bot the ``response_url`` is single-use: a handler that calls ``reply``
            there should return ``Answer("")`` (nothing more to send).
        registry: every command, for ``/help``.
    """

    event: MessageEvent
    command: Command
    args: Args
    group: GroupRecord | None
    is_operator: bool
    engine: Engine
    settings: Settings
    clock: Clock
    reply: ReplyFn
    registry: Registry

    @property
    def locale(self) -> Locale:
        return self.settings.locale

    @property
    def today(self) -> date:
        """Today in the configured time zone."""
        return self.clock().astimezone(self.settings.zone).date()

    @property
    def in_group(self) -> bool:
        return self.event.chat.chat_type == "group"
