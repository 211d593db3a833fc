"""The pure parts of chat commands: splitting, arguments, the registry, cutting to size."""

from __future__ import annotations

from datetime import date

import pytest

from analytics.member_days import activity_streak
from handlers import COMMANDS, REGISTRY
from handlers.context import Answer
from handlers.dispatcher import fit
from handlers.parsing import Args, ArgumentError, Invocation, parse_args, split_command
from handlers.registry import Command, DuplicateCommand, Registry

ALIASES = {
    "统计": "stats",
    "排行": "rank",
    "词云": "words",
    "沉默": "silent",
    "我": "me",
    "帮助": "help",
    "退出排行": "optout",
    "加入排行": "optin",
}


@pytest.mark.parametrize(("alias", "name"), sorted(ALIASES.items()))
@pytest.mark.parametrize("slash", ["/", "／"])
def test_every_chinese_alias_finds_its_command(alias: str, name: str, slash: str) -> None:
    invocation = split_command(f"{slash}{alias}")
    assert invocation is not None
    command = REGISTRY.find(invocation.name)
    assert command is not None
    assert command.name == name


@pytest.mark.parametrize("name", [c.name for c in COMMANDS])
def test_every_english_name_finds_its_command_case_insensitively(name: str) -> None:
    invocation = split_command(f"  /{name.upper()}  ")
    assert invocation is not None
    command = REGISTRY.find(invocation.name)
    assert command is not None
    assert command.name == name


def test_split_command_takes_full_width_slash_digits_and_spaces() -> None:
    assert split_command("／排行　本周　５") == Invocation("排行", ("本周", "5"))
    assert split_command("/stats week") == Invocation("stats", ("week",))
    assert split_command("/") == Invocation("", ())


def test_mentions_left_in_front_of_the_slash_are_skipped() -> None:
    assert split_command("@_user_1 /rank 5") == Invocation("rank", ("5",))
    assert split_command("@群脉 @Bot ／我") == Invocation("我", ())
    assert split_command("@群脉 你好") is None


@pytest.mark.parametrize("text", [None, "", "hello /stats", "统计", "  "])
def test_text_that_is_not_a_command(text: str | None) -> None:
    assert split_command(text) is None


@pytest.mark.parametrize(
    ("token", "spec"),
    [
        ("day", "day"),
        ("today", "day"),
        ("今天", "day"),
        ("昨天", "yesterday"),
        ("week", "week"),
        ("本周", "week"),
        ("上周", "last-week"),
        ("month", "month"),
        ("本月", "month"),
        ("上月", "last-month"),
        ("7d", "7d"),
        ("7天", "7d"),
        ("30D", "30d"),
    ],
)
def test_period_words(token: str, spec: str) -> None:
    assert parse_args((token,), ("period",)).period == spec


def test_rank_takes_period_and_n_in_any_order() -> None:
    assert parse_args(("本周", "5"), ("period", "count")) == Args(period="week", count=5)
    assert parse_args(("5", "7天"), ("period", "count")) == Args(period="7d", count=5)


def test_silent_takes_days_as_a_number_or_n_days() -> None:
    assert parse_args(("30",), ("days",)).days == 30
    assert parse_args(("30天",), ("days",)).days == 30


def test_unmatched_tokens_are_kept_for_the_group_choice() -> None:
    assert parse_args(("本周", "运营群"), ("period",)) == Args(period="week", rest=("运营群",))


@pytest.mark.parametrize(
    ("tokens", "accepts", "message"),
    [
        (("0",), ("period", "count"), "N = 0: must be 1 to 50"),
        (("51",), ("period", "count"), "N = 51"),
        (("day", "week"), ("period",), "two periods"),
        (("3", "4"), ("period", "count"), "two numbers"),
        (("0天",), ("period",), "the days must be 1 to 366"),
        (("400",), ("days",), "days = 400"),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    tokens: tuple[str, ...], accepts: tuple[str, ...], message: str
) -> None:
    with pytest.raises(ArgumentError, match=message):
        parse_args(tokens, accepts)  # type: ignore[arg-type]


def test_registering_a_name_twice_names_both_commands() -> None:
    stats = REGISTRY.find("stats")
    assert stats is not None
    clash = Command(
        "statistics",
        ("统计",),
        stats.handler,
        audience="operators",
        accepts=(),
        needs_group=True,
        usage={"zh_CN": "", "en": ""},
        summary={"zh_CN": "", "en": ""},
    )
    with pytest.raises(DuplicateCommand, match=r"'统计' of /statistics .* by /stats"):
        Registry([*COMMANDS, clash])


def test_members_see_no_operator_commands() -> None:
    names = {c.name for c in REGISTRY.available(operator=False)}
    assert names == {"rank", "words", "me", "optout", "optin", "help"}
    assert {c.name for c in REGISTRY.available(operator=True)} >= {"stats", "silent"}


def test_fit_cuts_at_a_line_end_within_the_byte_limit() -> None:
    line = "- 张三:最后发言 2026-11-01"
    answer = Answer("\n".join([line] * 400), "t", private=True)
    cut = fit(answer, 4096)
    encoded = cut.text.encode()
    assert len(encoded) <= 4096
    assert cut.text.endswith("\n…")
    assert all(row == line for row in cut.text.split("\n")[:-1])
    assert cut.private
    assert fit(Answer("short"), 4096) == Answer("short")


def test_streak_counts_back_from_today_or_yesterday() -> None:
    today = date(2026, 11, 25)
    days = {date(2026, 11, 22), date(2026, 11, 23), date(2026, 11, 24)}
    assert activity_streak(days, today) == 3
    assert activity_streak(days | {today}, today) == 4
    assert activity_streak({date(2026, 11, 20)}, today) == 0
    assert activity_streak(set(), today) == 0
