"""The words of chat answers, per locale (Chinese by default, English with ``locale = "en"``)."""

from __future__ import annotations

from analytics.labels import Locale

TEXTS: dict[str, dict[Locale, str]] = {
    "help_title": {"zh_CN": "群脉 · 可用命令", "en": "qunpulse · commands"},
    "help_intro": {
        "zh_CN": "在群里 @我 并输入命令,或在私聊中直接输入:",
        "en": "@-mention me in a group with a command, or type it in a private chat:",
    },
    "help_periods": {
        "zh_CN": "周期:今天 / 昨天 / 本周 / 上周 / 本月 / 上月 / N天"
        "(也可写 day / week / month / 7d)",
        "en": "Periods: day, yesterday, week, last-week, month, last-month, Nd (e.g. 7d); "
        "also 今天 / 本周 / 本月 / 7天",
    },
    "help_operator_note": {
        "zh_CN": "标 🔒 的命令仅限运营者。",
        "en": "Commands marked 🔒 are for operators.",
    },
    "problem": {"zh_CN": "⚠️ {problem}", "en": "⚠️ {problem}"},
    "unknown_command": {
        "zh_CN": "没有 /{name} 这个命令。",
        "en": "There is no command /{name}.",
    },
    "empty_command": {
        "zh_CN": "请在 / 后面写上命令名。",
        "en": "Write a command name after the slash.",
    },
    "bad_args": {"zh_CN": "/{name} 的参数有误:{error}", "en": "/{name}: {error}"},
    "unexpected_arg": {
        "zh_CN": "看不懂参数「{token}」。",
        "en": 'I do not understand the argument "{token}".',
    },
    "refused": {
        "zh_CN": "抱歉,/{name} 仅限本群运营者使用。"
        "你可以用 /排行 查看发言排行,用 /我 查看自己的数据。",
        "en": "Sorry, /{name} is for this group's operators. You can use /rank for the "
        "leaderboard and /me for your own figures.",
    },
    "no_group_yet": {
        "zh_CN": "我还没有这个群的数据。",
        "en": "I have no data for this group yet.",
    },
    "choose_group": {
        "zh_CN": "你在多个群里,请在命令后写上群名或群 ID,例如 /{name} {example}。可选:{groups}",
        "en": "You are in several groups; add the group's name or id, e.g. /{name} {example}. "
        "Choose from: {groups}",
    },
    "no_groups": {
        "zh_CN": "没有找到你所在(或你负责)的群。请在群里 @我 使用这个命令。",
        "en": "I found no group you are in (or run). Use this command in a group by "
        "@-mentioning me.",
    },
    "unknown_group": {
        "zh_CN": "没有找到群「{token}」。可选:{groups}",
        "en": "No group {token!r}. Choose from: {groups}",
    },
    "sent_privately": {
        "zh_CN": "结果已私聊发给你。",
        "en": "I sent you the answer in a private chat.",
    },
    "needs_private": {
        "zh_CN": "这个结果只能私聊发送。请在与我的单聊中发送 /{name}。",
        "en": "This answer can only be sent privately. Send /{name} to me in a private chat.",
    },
    "failed": {
        "zh_CN": "抱歉,处理 /{name} 时出错了,请稍后再试。",
        "en": "Sorry, something went wrong with /{name}. Please try again later.",
    },
    "at_only_note": {
        "zh_CN": "注:此群只统计 @机器人 的消息,并非全群发言。",
        "en": "Note: only messages that @-mention the bot are counted, not the whole group.",
    },
    # /stats
    "stats_title": {"zh_CN": "{group} · 群数据 {period}", "en": "{group} · figures {period}"},
    "stats_line": {"zh_CN": "{name}:{value}(较上期 {delta})", "en": "{name}: {value} ({delta})"},
    "top_senders": {"zh_CN": "发言最多", "en": "Top senders"},
    "top_words": {"zh_CN": "高频词", "en": "Top words"},
    "sentiment": {"zh_CN": "情绪分布", "en": "Sentiment"},
    "positive": {"zh_CN": "正面", "en": "positive"},
    "neutral": {"zh_CN": "中性", "en": "neutral"},
    "negative": {"zh_CN": "负面", "en": "negative"},
    "mean": {"zh_CN": "平均分", "en": "mean"},
    "messages_n": {"zh_CN": "{n} 条", "en": "{n} messages"},
    "hidden_opted_out": {"zh_CN": "(已退出排行)", "en": "(opted out)"},
    # /rank
    "rank_title": {"zh_CN": "{group} · 发言排行 {period}", "en": "{group} · message rank {period}"},
    "rank_empty": {"zh_CN": "这段时间还没有人发言。", "en": "Nobody has spoken in this period."},
    # /words
    "words_title": {"zh_CN": "{group} · 高频词 {period}", "en": "{group} · top words {period}"},
    "words_empty": {
        "zh_CN": "这段时间没有可统计的文字。",
        "en": "No text to count in this period.",
    },
    # /silent
    "silent_title": {
        "zh_CN": "{group} · 沉默成员(≥{days} 天未发言)",
        "en": "{group} · silent members (no message for {days}+ days)",
    },
    "silent_none": {
        "zh_CN": "没有沉默 {days} 天以上的成员。",
        "en": "Nobody has been silent for {days} days or more.",
    },
    "silent_line": {"zh_CN": "{who}:最后发言 {last}", "en": "{who}: last message {last}"},
    "never_spoke": {"zh_CN": "从未发言(首次出现 {first})", "en": "never (first seen {first})"},
    "silent_more": {"zh_CN": "……另有 {n} 人", "en": "… and {n} more"},
    "silent_hint": {
        "zh_CN": "建议:对沉默成员做一对一关怀或定向邀请。",
        "en": "Suggestion: reach out to silent members personally.",
    },
    # /me
    "me_title": {"zh_CN": "{who} 的数据 · {group}", "en": "{who} · {group}"},
    "me_count": {"zh_CN": "{period} 发言:{count} 条", "en": "Messages {period}: {count}"},
    "me_rank": {"zh_CN": "排名:第 {rank} 名(共 {total} 人)", "en": "Rank: {rank} of {total}"},
    "me_no_rank": {"zh_CN": "排名:本期暂无", "en": "Rank: none yet this period"},
    "me_streak": {"zh_CN": "连续活跃:{days} 天", "en": "Active streak: {days} days"},
    "me_first_seen": {"zh_CN": "首次出现:{date}", "en": "First seen: {date}"},
    "me_opted_out": {
        "zh_CN": "你已退出公开排行(发送 /加入排行 可恢复)。",
        "en": "You are hidden from public rankings (send /optin to show again).",
    },
    # /optout /optin
    "optout_done": {
        "zh_CN": "好的,你已退出公开排行:排行榜和群内统计不再显示你的名字。发送 /加入排行 可恢复。",
        "en": "Done: you are hidden from public rankings and group posts. Send /optin to "
        "show again.",
    },
    "dashboard_title": {"zh_CN": "群脉看板", "en": "qunpulse dashboard"},
    "dashboard_link": {
        "zh_CN": "[点此打开看板]({url})\n\n链接 {minutes} 分钟内有效,只能使用一次;"
        "打开后可浏览 {hours} 小时。请勿转发。",
        "en": "[Open the dashboard]({url})\n\nThe link works once, within {minutes} minutes; "
        "you then stay signed in for {hours} hours. Do not forward it.",
    },
    "dashboard_no_public_url": {
        "zh_CN": "看板尚未开启:请管理员在 qunpulse.toml 中设置 server.public_url"
        "(本服务的 https 地址,例如 https://qunpulse.example.com)后重启。",
        "en": "The dashboard is not set up: an admin must set server.public_url in "
        "qunpulse.toml (this server's https address, e.g. https://qunpulse.example.com) "
        "and restart.",
    },
    "optin_done": {
        "zh_CN": "好的,你已重新加入公开排行。",
        "en": "Done: you are shown in public rankings again.",
    },
}


def text(key: str, locale: Locale, **values: object) -> str:
    """The text ``key`` in ``locale`` with ``values`` filled in."""
    return TEXTS[key][locale].format(**values)
