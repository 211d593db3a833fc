"""Read a chat command: ``/name arg arg`` (or ``／名 参数``) into a name and typed arguments.

Pure functions, no I/O. The platform modules already removed the @-mention (WeCom's
leading ``@BotName``; DingTalk delivers the text without it), so a command is text
whose first non-blank character is ``/`` or the full-width ``／``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

#: Slashes that start a command: ASCII and full-width (Chinese input methods type ``／``).
SLASHES = ("/", "／")
#: What one argument of a command can be.
ParamKind = Literal["period", "count", "days"]

#: Limits that keep answers readable and queries bounded.
MAX_COUNT = 50
MAX_DAYS = 366

_PERIOD_WORDS = {
    "day": "day",
    "today": "day",
    "今天": "day",
    "今日": "day",
    "yesterday": "yesterday",
    "昨天": "yesterday",
    "昨日": "yesterday",
    "week": "week",
    "本周": "week",
    "这周": "week",
    "last-week": "last-week",
    "上周": "last-week",
    "month": "month",
    "本月": "month",
    "这个月": "month",
    "last-month": "last-month",
    "上月": "last-month",
    "上个月": "last-month",
}
_N_DAYS = re.compile(r"^(\d{1,4})(?:d|天|日)$")
_INTEGER = re.compile(r"^\d{1,6}$")
#: Leading @-mentions a platform left in the text (Feishu's ``@_user_1`` placeholders,
#: a WeCom bot name with a space in it): skipped before looking for the slash.
_LEADING_MENTIONS = re.compile(r"^(?:\s*@\S+)+\s*")
# Full-width digits and spaces, as Chinese input methods may type them.
_WIDE = str.maketrans("０１２３４５６７８９　", "0123456789 ")


class ArgumentError(ValueError):
    """An argument could not be understood; the message says which and what is accepted.

    ``str(error)`` is English; :attr:`chinese` says the same in Chinese.
    """

    def __init__(self, english: str, chinese: str) -> None:
        super().__init__(english)
        self.chinese = chinese

    def in_locale(self, locale: str) -> str:
        return self.chinese if locale == "zh_CN" else str(self)


@dataclass(frozen=True, slots=True)
class Invocation:
    """A command as typed: its name (lower case, no slash) and its raw arguments."""

    name: str
    args: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Args:
    """A command's arguments, typed.

    Attributes:
        period: a period spec :func:`analytics.periods.resolve_period` accepts.
        count: how many rows (``/rank 20``).
        days: a number of days (``/silent 14``).
        rest: tokens that are none of these (a group's name or id in a private chat).
    """

    period: str | None = None
    count: int | None = None
    days: int | None = None
    rest: tuple[str, ...] = ()


def split_command(text: str | None) -> Invocation | None:
    """Split ``text`` into a command name and arguments, or None if it is not a command.

    Platform modules strip the bot's @-mention; any @-mention still in front of the
    slash (Feishu marks mentions as ``@_user_1``) is skipped here as well.

    >>> split_command("／排行 本周 5")
    Invocation(name='排行', args=('本周', '5'))
    """
    if not text:
        return None
    stripped = _LEADING_MENTIONS.sub("", text.translate(_WIDE).strip(), count=1)
    if not stripped.startswith(SLASHES):
        return None
    words = stripped[1:].split()
    if not words:
        return Invocation("", ())
    return Invocation(words[0].lower(), tuple(words[1:]))


def period_spec(token: str) -> str | None:
    """The canonical period spec of ``token`` (``本周`` → ``week``, ``7天`` → ``7d``), or None."""
    word = token.lower()
    if word in _PERIOD_WORDS:
        return _PERIOD_WORDS[word]
    match = _N_DAYS.match(word)
    if match:
        return f"{int(match.group(1))}d"
    return None


def parse_args(tokens: tuple[str, ...], accepts: tuple[ParamKind, ...]) -> Args:
    """Type ``tokens`` against the kinds a command ``accepts``, in any order.

    A bare number is a count when the command takes one, else a number of days; ``7d``
    or ``7天`` is a period when the command takes one, else a number of days.

    Raises:
        ArgumentError: a value is out of range or given twice.
    """
    period: str | None = None
    count: int | None = None
    days: int | None = None
    rest: list[str] = []
    for token in tokens:
        spec = period_spec(token)
        if spec is not None and "period" in accepts:
            if period is not None:
                raise ArgumentError(
                    f"two periods given ({period!r} and {token!r}); give one",
                    f"给了两个周期({period} 和 {token}),请只给一个",
                )
            if spec.endswith("d") and not 1 <= int(spec[:-1]) <= MAX_DAYS:
                raise ArgumentError(
                    f"period {token!r}: the days must be 1 to {MAX_DAYS}",
                    f"周期「{token}」:天数须在 1 到 {MAX_DAYS} 之间",
                )
            period = spec
            continue
        number = _number(token, spec)
        if number is not None and "count" in accepts and _INTEGER.match(token):
            if count is not None:
                raise ArgumentError(
                    f"two numbers given ({count} and {token!r}); give one",
                    f"给了两个人数({count} 和 {token}),请只给一个",
                )
            if not 1 <= number <= MAX_COUNT:
                raise ArgumentError(
                    f"N = {token}: must be 1 to {MAX_COUNT}",
                    f"人数 {token}:须在 1 到 {MAX_COUNT} 之间",
                )
            count = number
            continue
        if number is not None and "days" in accepts:
            if days is not None:
                raise ArgumentError(
                    f"two day counts given ({days} and {token!r}); give one",
                    f"给了两个天数({days} 和 {token}),请只给一个",
                )
            if not 1 <= number <= MAX_DAYS:
                raise ArgumentError(
                    f"days = {token}: must be 1 to {MAX_DAYS}",
                    f"天数 {token}:须在 1 到 {MAX_DAYS} 之间",
                )
            days = number
            continue
        rest.append(token)
    return Args(period, count, days, tuple(rest))


def _number(token: str, spec: str | None) -> int | None:
    if _INTEGER.match(token):
        return int(token)
    if spec is not None and spec.endswith("d"):
        return int(spec[:-1])
    return None
