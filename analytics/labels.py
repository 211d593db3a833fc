"""Words shown to people, per locale (Chinese by default, English by ``locale = "en"``)."""

from __future__ import annotations

from typing import Literal

Locale = Literal["zh_CN", "en"]

METRIC_NAMES: dict[str, dict[str, str]] = {
    "messages": {"zh_CN": "消息总量", "en": "Messages"},
    "active_members": {"zh_CN": "活跃用户数", "en": "Active members"},
    "activity_rate": {"zh_CN": "社群活跃度", "en": "Activity rate"},
    "members": {"zh_CN": "社群总人数", "en": "Members"},
    "joins": {"zh_CN": "新增人数", "en": "Joins"},
    "leaves": {"zh_CN": "退群人数", "en": "Leaves"},
    "removed": {"zh_CN": "被移出人数", "en": "Removed"},
    "net_growth": {"zh_CN": "净增长人数", "en": "Net growth"},
    "leave_rate": {"zh_CN": "退群率", "en": "Leave rate"},
    "messages_per_member": {"zh_CN": "人均消息量", "en": "Messages per member"},
    "message_rank": {"zh_CN": "消息量排名", "en": "Message rank"},
}

WORDS: dict[str, dict[str, str]] = {
    "metric": {"zh_CN": "指标", "en": "Metric"},
    "value": {"zh_CN": "本期", "en": "This period"},
    "previous": {"zh_CN": "上期", "en": "Previous"},
    "change": {"zh_CN": "变化", "en": "Change"},
    "rank": {"zh_CN": "名次", "en": "#"},
    "member": {"zh_CN": "成员", "en": "Member"},
    "count": {"zh_CN": "消息数", "en": "Messages"},
    "period": {"zh_CN": "统计周期", "en": "Period"},
    "group": {"zh_CN": "群", "en": "Group"},
    "opted_out": {"zh_CN": "(已退出排行)", "en": "(opted out)"},
    "no_messages": {"zh_CN": "本期没有消息。", "en": "No messages in this period."},
    # The export workbook (qunpulse export): sheet names and column headers.
    "sheet_summary": {"zh_CN": "汇总", "en": "Summary"},
    "sheet_rank": {"zh_CN": "消息量排名", "en": "Message rank"},
    "sheet_members": {"zh_CN": "成员", "en": "Members"},
    "sheet_daily": {"zh_CN": "每日", "en": "Daily"},
    "sheet_alerts": {"zh_CN": "告警", "en": "Alerts"},
    "metric_id": {"zh_CN": "指标ID", "en": "Metric id"},
    "change_pct": {"zh_CN": "变化率", "en": "Change %"},
    "user_id": {"zh_CN": "成员ID", "en": "User id"},
    "name": {"zh_CN": "昵称", "en": "Name"},
    "first_seen": {"zh_CN": "首次出现", "en": "First seen"},
    "joined": {"zh_CN": "入群时间", "en": "Joined"},
    "last_message": {"zh_CN": "最后发言", "en": "Last message"},
    "messages_in_period": {"zh_CN": "本期消息数", "en": "Messages in period"},
    "status": {"zh_CN": "状态", "en": "Status"},
    "privacy": {"zh_CN": "隐私", "en": "Privacy"},
    "opted_out_short": {"zh_CN": "已退出排行", "en": "opted out"},
    "status_join": {"zh_CN": "在群", "en": "in group"},
    "status_leave": {"zh_CN": "已退群", "en": "left"},
    "status_removed": {"zh_CN": "被移出", "en": "removed"},
    "date": {"zh_CN": "日期", "en": "Date"},
    "time": {"zh_CN": "时间", "en": "Time"},
    "alert_kind": {"zh_CN": "类型", "en": "Kind"},
    "text": {"zh_CN": "内容", "en": "Text"},
    "score": {"zh_CN": "情感分", "en": "Score"},
    "generated_at": {"zh_CN": "导出时间", "en": "Exported at"},
    "source_at_only": {
        "zh_CN": "注意:此群的数据来自机器人收到的 @ 消息,不是全群的全部发言。",
        "en": "Note: this group's figures count only messages that @-mention the bot, "
        "not the whole group's activity.",
    },
    "source_full": {
        "zh_CN": "数据来源:全部群消息。",
        "en": "Source: every message of the group.",
    },
}


def metric_name(metric_id: str, locale: Locale) -> str:
    return METRIC_NAMES.get(metric_id, {}).get(locale, metric_id)


def word(key: str, locale: Locale) -> str:
    return WORDS[key][locale]
