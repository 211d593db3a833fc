"""Answer chat commands in the background, once each, through the bot's reply channel.

The HTTP callback stores the message and answers the platform first; only then does it
hand the stored events to :meth:`Dispatcher.feed`, which starts one task per new command
and returns at once (the aiogram way: tasks are kept in a set so they are not garbage
collected mid-flight). A slow ``/stats`` therefore never delays the acknowledgement of
other callbacks.

Each command is claimed in the ``command_reply`` table under its platform message id
before it is answered: a redelivery (or a second process) finds the claim and stays
silent, so nobody gets two answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import Engine

from bot.events import MessageEvent
from config.settings import Settings
from handlers.commands import help_text
from handlers.context import Answer, Clock, Context, ReplyChannel, ReplyError
from handlers.parsing import Args, ArgumentError, Invocation, parse_args, split_command
from handlers.registry import Command, Registry
from handlers.texts import text
from storage import commands as repo
from storage.ingest import Stored
from storage.queries import GroupRecord, find_group

log = logging.getLogger(__name__)


class _Refusal(Exception):
    """The command cannot run as asked; ``answer`` says why (with help when useful)."""

    def __init__(self, answer: Answer) -> None:
        super().__init__(answer.text)
        self.answer = answer


@dataclass(frozen=True, slots=True)
class _Outcome:
    status: str
    channel: str
    error: str | None = None


class Dispatcher:
    """Run command handlers for new command messages, in the background.

    Args:
        registry: the commands (``handlers.REGISTRY``).
        engine: the database.
        settings: validated settings (operators, locale, time zone).
        clock: the current time.
        channels: each bot's reply channel, by bot id.
        max_concurrent: commands computed at once (they share the database pool).
        timeout: seconds a command may take before it is answered with an apology.
        on_outcome: called with (command, status) after each answer, for metrics.
    """

    def __init__(
        self,
        *,
        registry: Registry,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        channels: Mapping[str, ReplyChannel],
        max_concurrent: int = 4,
        timeout: float = 30.0,
        on_outcome: Callable[[str, str], None] | None = None,
    ) -> None:
        self._registry = registry
        self._engine = engine
        self._settings = settings
        self._clock = clock
        self._channels = channels
        self._timeout = timeout
        self._limit = asyncio.Semaphore(max_concurrent)
        self._tasks: set[asyncio.Task[None]] = set()
        self._on_outcome = on_outcome

    def feed(self, stored: Iterable[Stored]) -> None:
        """Start answering every new command among ``stored``; returns at once."""
        for item in stored:
            event = item.event
            if not item.new or not isinstance(event, MessageEvent):
                continue
            if event.chat.chat_type == "group" and not event.mentions_bot:
                # Where the bot sees every group message (Feishu), a command is addressed
                # to it only with an @-mention, as SPEC.md says.
                continue
            invocation = split_command(event.text)
            if invocation is None:
                continue
            channel = self._channels.get(event.bot_id)
            if channel is None:
                log.warning("bot %s: no reply channel; a command stays unanswered", event.bot_id)
                continue
            task = asyncio.create_task(
                self._run(event, invocation, channel), name=f"qunpulse-command-{event.message_id}"
            )
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def join(self) -> None:
        """Wait until every command started so far has been answered."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def stop(self, grace: float = 5.0) -> None:
        """Give running commands ``grace`` seconds to finish, then cancel the rest."""
        if not self._tasks:
            return
        _done, pending = await asyncio.wait(list(self._tasks), timeout=grace)
        for task in pending:
            task.cancel()
        for task in pending:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(
        self, event: MessageEvent, invocation: Invocation, channel: ReplyChannel
    ) -> None:
        command = self._registry.find(invocation.name)
        name = command.name if command else "?"
        try:
            claimed = await asyncio.to_thread(
                repo.claim_reply,
                self._engine,
                platform=event.platform,
                message_id=event.message_id,
                bot_id=event.bot_id,
                chat_id=event.chat.chat_id,
                user_id=event.sender.user_id,
                command=name,
            )
        except Exception:
            log.exception("bot %s: could not record command /%s; not answering", event.bot_id, name)
            return
        if not claimed:
            return  # answered (or being answered) already: a redelivery or another process
        async with self._limit:
            outcome = await self._answer(event, invocation, command, channel)
        if self._on_outcome is not None:
            self._on_outcome(name, outcome.status)
        try:
            await asyncio.to_thread(
                repo.finish_reply,
                self._engine,
                platform=event.platform,
                message_id=event.message_id,
                status=outcome.status,
                channel=outcome.channel,
                error=outcome.error,
            )
        except Exception:
            log.exception("bot %s: could not record the answer to /%s", event.bot_id, name)

    async def _answer(
        self,
        event: MessageEvent,
        invocation: Invocation,
        command: Command | None,
        channel: ReplyChannel,
    ) -> _Outcome:
        name = command.name if command else invocation.name
        try:
            try:
                answer = await asyncio.wait_for(
                    self._compute(event, invocation, command, channel), self._timeout
                )
            except _Refusal as refusal:
                answer = refusal.answer
            except Exception as error:
                # The asker gets an apology, never a stack trace; the log gets the detail.
                log.exception("bot %s: /%s failed", event.bot_id, name)
                await self._deliver(event, self._apology(name), channel, name)
                return _Outcome("failed", "chat", f"handler: {type(error).__name__}")
            where = await self._deliver(event, answer, channel, invocation.name)
        except ReplyError as error:
            log.warning(
                "bot %s: the answer to /%s was not delivered: %s", event.bot_id, name, error
            )
            return _Outcome("failed", "none", str(error))
        except Exception as error:
            log.exception("bot %s: the answer to /%s was not delivered", event.bot_id, name)
            return _Outcome("failed", "none", f"send: {type(error).__name__}")
        return _Outcome("sent", where)

    def _apology(self, name: str) -> Answer:
        return Answer(text("failed", self._settings.locale, name=name))

    async def _deliver(
        self, event: MessageEvent, answer: Answer, channel: ReplyChannel, name: str
    ) -> str:
        """Send ``answer`` where it may go; returns ``chat``, ``private``, ``notice`` or ``none``.

        A private answer to a group command goes to the asker alone when the platform
        has a way; otherwise the group is told to ask in a private chat, with no figures.
        """
        if not answer.text:
            return "none"
        answer = fit(answer, channel.max_bytes)
        locale = self._settings.locale
        if answer.private and event.chat.chat_type == "group":
            if channel.can_send_private(event):
                try:
                    await channel.send_private(event, answer)
                except ReplyError:
                    # Tell the group (without figures) rather than leave the asker waiting.
                    await channel.reply(event, Answer(text("needs_private", locale, name=name)))
                    raise
                with contextlib.suppress(ReplyError):
                    await channel.reply(event, Answer(text("sent_privately", locale)))
                return "private"
            # No private way to this person: say so in the group, with no figures.
            await channel.reply(event, Answer(text("needs_private", locale, name=name)))
            return "notice"
        await channel.reply(event, answer)
        return "chat"

    async def _compute(
        self,
        event: MessageEvent,
        invocation: Invocation,
        command: Command | None,
        channel: ReplyChannel,
    ) -> Answer:
        locale = self._settings.locale
        help_command = self._registry.find("help")
        if help_command is None:
            raise RuntimeError("the registry has no /help command")
        in_group = event.chat.chat_type == "group"
        here = await asyncio.to_thread(self._group_here, event) if in_group else None

        def context(cmd: Command, args: Args, group: GroupRecord | None) -> Context:
            async def reply(extra: Answer) -> None:
                await self._deliver(event, extra, channel, invocation.name)

            return Context(
                event=event,
                command=cmd,
                args=args,
                group=group,
                is_operator=self.is_operator(event, group),
                engine=self._engine,
                settings=self._settings,
                clock=self._clock,
                reply=reply,
                registry=self._registry,
            )

        def with_help(problem: str) -> _Refusal:
            return _Refusal(help_text(context(help_command, Args(), here), problem))

        if command is None:
            if not invocation.name:
                raise with_help(text("empty_command", locale))
            raise with_help(text("unknown_command", locale, name=invocation.name))
        try:
            args = parse_args(invocation.args, command.accepts)
        except ArgumentError as error:
            raise with_help(
                text("bad_args", locale, name=invocation.name, error=error.in_locale(locale))
            ) from None

        group: GroupRecord | None = here
        if command.needs_group:
            if in_group:
                if args.rest:
                    problem = text("unexpected_arg", locale, token=args.rest[0])
                    raise with_help(text("bad_args", locale, name=invocation.name, error=problem))
                if group is None:
                    raise _Refusal(Answer(text("no_group_yet", locale)))
            else:
                group = await asyncio.to_thread(self._choose_group, event, command, args)
        ctx = context(command, args, group)
        if command.audience == "operators" and not ctx.is_operator:
            return Answer(text("refused", locale, name=invocation.name))
        return await command.handler(ctx)

    # ------------------------------------------------------------------ who, where

    def is_operator(self, event: MessageEvent, group: GroupRecord | None) -> bool:
        """Whether the sender may use operator commands for ``group``.

        An operator is listed in ``[operators].<platform>``, or in the ``operators`` of
        the group's ``[[groups]]`` entry, or (with ``operators_include_admins = true``) is
        an admin of the group the command was sent in, as the platform says.
        """
        user = event.sender.user_id
        platform = event.platform
        if user in getattr(self._settings.operators, platform):
            return True
        if group is None:
            # A private chat before a group is chosen: /help shows what they could run.
            return any(
                user in entry.operators
                for entry in self._settings.groups
                if entry.platform == platform
            )
        if any(
            user in entry.operators
            for entry in self._settings.groups
            if entry.platform == platform and entry.chat_id == group.chat_id
        ):
            return True
        return (
            self._settings.operators_include_admins
            and event.sender.is_admin
            and event.chat.chat_type == "group"
            and event.chat.chat_id == group.chat_id
        )

    def _group_here(self, event: MessageEvent) -> GroupRecord | None:
        return find_group(self._engine, event.chat.chat_id, event.platform)

    def _choose_group(self, event: MessageEvent, command: Command, args: Args) -> GroupRecord:
        """In a private chat: the one group the asker may mean, or a refusal that lists them."""
        locale = self._settings.locale
        platform, user = event.platform, event.sender.user_id
        if user in getattr(self._settings.operators, platform):
            candidates = repo.groups_on(self._engine, platform)
        else:
            runs = {
                entry.chat_id
                for entry in self._settings.groups
                if entry.platform == platform and user in entry.operators
            }
            candidates = [g for g in repo.groups_on(self._engine, platform) if g.chat_id in runs]
            if command.audience == "anyone":
                known = {g.id for g in candidates}
                candidates += [
                    g
                    for g in repo.groups_of_member(self._engine, platform, user)
                    if g.id not in known
                ]
        listed = "、".join(f"{g.name or g.chat_id}" for g in candidates[:20])
        if args.rest:
            wanted = args.rest[0].lower()
            for group in candidates:
                if wanted in (group.chat_id.lower(), (group.name or "").lower()):
                    return group
            raise _Refusal(
                Answer(text("unknown_group", locale, token=args.rest[0], groups=listed or "–"))
            )
        if len(candidates) == 1:
            return candidates[0]
        if not candidates:
            raise _Refusal(Answer(text("no_groups", locale)))
        example = candidates[0].name or candidates[0].chat_id
        raise _Refusal(
            Answer(text("choose_group", locale, name=command.name, example=example, groups=listed))
        )


def fit(answer: Answer, max_bytes: int) -> Answer:
    """Cut ``answer`` to ``max_bytes`` UTF-8 bytes at a line end, marking the cut with ``…``."""
    encoded = answer.text.encode()
    if len(encoded) <= max_bytes:
        return answer
    marker = "\n…"
    budget = max_bytes - len(marker.encode())
    head = encoded[:budget].decode("utf-8", errors="ignore")
    if "\n" in head:
        head = head[: head.rindex("\n")]
    return Answer(head + marker, answer.title, answer.private)
