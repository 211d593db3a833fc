"""The command registry: names, aliases, who may use each command, and its arguments."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Literal

from analytics.labels import Locale
from handlers.context import Answer, Context
from handlers.parsing import ParamKind

Handler = Callable[[Context], Awaitable[Answer]]
Audience = Literal["anyone", "operators"]


@dataclass(frozen=True, slots=True)
class Command:
    """One chat command.

    Attributes:
        name: the English name typed after the slash (``stats``).
        aliases: other names (``统计``).
        handler: the coroutine that answers it.
        audience: ``anyone`` or ``operators``.
        accepts: the argument kinds it takes, in the order the usage shows them.
        needs_group: it is about one group (in a private chat the group must be chosen).
        usage: the argument part of the usage line, per locale (``[day|week|month|Nd]``).
        summary: one line for ``/help``, per locale.
    """

    name: str
    aliases: tuple[str, ...]
    handler: Handler = field(compare=False)
    audience: Audience
    accepts: tuple[ParamKind, ...]
    needs_group: bool
    usage: dict[Locale, str]
    summary: dict[Locale, str]

    @property
    def names(self) -> tuple[str, ...]:
        return (self.name, *self.aliases)


class DuplicateCommand(ValueError):
    """Two commands claim the same name or alias."""


class Registry:
    """Every command, found by name or alias (case-insensitive).

    Raises:
        DuplicateCommand: a name or alias is registered twice; the message names both.
    """

    def __init__(self, commands: Iterable[Command]) -> None:
        self.commands: tuple[Command, ...] = tuple(commands)
        self._by_name: dict[str, Command] = {}
        for command in self.commands:
            for name in command.names:
                key = name.lower()
                owner = self._by_name.get(key)
                if owner is not None:
                    raise DuplicateCommand(
                        f"command name {name!r} of /{command.name} is already registered by "
                        f"/{owner.name}; rename one of them in handlers/__init__.py"
                    )
                self._by_name[key] = command

    def find(self, name: str) -> Command | None:
        return self._by_name.get(name.lower())

    def available(self, *, operator: bool) -> list[Command]:
        """The commands someone may use (operators see every command)."""
        return [c for c in self.commands if operator or c.audience == "anyone"]
