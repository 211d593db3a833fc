"""The dashboard's words, per locale (Chinese by default, English with ``locale = "en"``)."""

from __future__ import annotations

from analytics.labels import Locale, metric_name

WORDS: dict[str, dict[Locale, str]] = {
    "title": {"zh_CN": "群脉看板", "en": "qunpulse dashboard"},
    "my_groups": {"zh_CN": "我的群", "en": "My groups"},
    "overview": {"zh_CN": "概览", "en": "Overview"},
    "members_page": {"zh_CN": "成员", "en": "Members"},
    "alerts_page": {"zh_CN": "告警", "en": "Alerts"},
    "sign_out": {"zh_CN": "退出登录", "en": "Sign out"},
    "period": {"zh_CN": "周期", "en": "Period"},
    "show": {"zh_CN": "查看", "en": "Show"},
    "from": {"zh_CN": "从", "en": "From"},
    "to": {"zh_CN": "到", "en": "To"},
    "p_day": {"zh_CN": "今天", "en": "Today"},
    "p_yesterday": {"zh_CN": "昨天", "en": "Yesterday"},
    "p_week": {"zh_CN": "本周", "en": "This week"},
    "p_last-week": {"zh_CN": "上周", "en": "Last week"},
    "p_month": {"zh_CN": "本月", "en": "This month"},
    "p_last-month": {"zh_CN": "上月", "en": "Last month"},
    "p_7d": {"zh_CN": "近 7 天", "en": "Last 7 days"},
    "p_30d": {"zh_CN": "近 30 天", "en": "Last 30 days"},
    "p_90d": {"zh_CN": "近 90 天", "en": "Last 90 days"},
    "group": {"zh_CN": "群", "en": "Group"},
    "platform": {"zh_CN": "平台", "en": "Platform"},
    "source": {"zh_CN": "数据来源", "en": "Data source"},
    "source_full": {"zh_CN": "全部消息", "en": "full"},
    "source_at_mentions_only": {"zh_CN": "仅 @ 消息", "en": "@-only"},
    "at_only_note": {
        "zh_CN": "注意:此群的数据只来自 @机器人 的消息,不是全群的全部发言。",
        "en": "Note: this group's figures count only messages that @-mention the bot.",
    },
    "wecom": {"zh_CN": "企业微信", "en": "WeCom"},
    "dingtalk": {"zh_CN": "钉钉", "en": "DingTalk"},
    "feishu": {"zh_CN": "飞书", "en": "Feishu"},
    "sentiment": {"zh_CN": "情绪(积极占比)", "en": "Sentiment (positive share)"},
    "change": {"zh_CN": "较上期", "en": "Change"},
    "previous": {"zh_CN": "上期", "en": "Previous"},
    "no_groups": {
        "zh_CN": "你还没有可查看的群。运营者名单见 qunpulse.toml 的 [operators] 与 "
        "[[groups]].operators。",
        "en": "There is no group for you yet. Operators are listed in qunpulse.toml under "
        "[operators] and [[groups]].operators.",
    },
    "not_available": {"zh_CN": "暂无数据(该指标尚未提供)", "en": "Not available yet"},
    "no_data": {"zh_CN": "本期没有数据", "en": "No data in this period"},
    "daily_activity": {"zh_CN": "每日消息与活跃人数", "en": "Messages and active members per day"},
    "daily_membership": {"zh_CN": "每日入群与退群", "en": "Joins and leaves per day"},
    "heatmap": {"zh_CN": "发言时间分布(星期 × 小时)", "en": "When people talk (weekday × hour)"},
    "rank": {"zh_CN": "发言排行", "en": "Message rank"},
    "top_words": {"zh_CN": "高频词", "en": "Top words"},
    "sentiment_over_time": {"zh_CN": "情绪", "en": "Sentiment"},
    "segments": {"zh_CN": "成员分层", "en": "Segments"},
    "retention": {"zh_CN": "留存(按入群日)", "en": "Retention by join cohort"},
    "targets": {"zh_CN": "目标与实际", "en": "Targets against actual"},
    "stickiness": {"zh_CN": "用户黏性", "en": "Stickiness"},
    "positive": {"zh_CN": "积极", "en": "positive"},
    "neutral": {"zh_CN": "中性", "en": "neutral"},
    "negative": {"zh_CN": "消极", "en": "negative"},
    "mean": {"zh_CN": "平均分", "en": "mean"},
    "high_active": {"zh_CN": "高活跃", "en": "High-active"},
    "silent": {"zh_CN": "沉默", "en": "Silent"},
    "churn_warning": {"zh_CN": "流失预警", "en": "Churn warning"},
    "count": {"zh_CN": "人数", "en": "Count"},
    "action": {"zh_CN": "建议", "en": "Suggested action"},
    "cohort": {"zh_CN": "入群日", "en": "Cohort"},
    "joined_n": {"zh_CN": "入群", "en": "Joined"},
    "retained": {"zh_CN": "留存", "en": "Retained"},
    "rate": {"zh_CN": "留存率", "en": "Rate"},
    "target": {"zh_CN": "目标", "en": "Target"},
    "actual": {"zh_CN": "实际", "en": "Actual"},
    "met": {"zh_CN": "达成", "en": "Met"},
    "no_targets": {
        "zh_CN": "尚未设置目标:在 qunpulse.toml 的 [targets] 中设置(例如 activity_rate = 0.15)。",
        "en": "No targets set: add them under [targets] in qunpulse.toml "
        "(e.g. activity_rate = 0.15).",
    },
    "yes": {"zh_CN": "是", "en": "yes"},
    "no": {"zh_CN": "否", "en": "no"},
    "messages": {"zh_CN": "消息", "en": "Messages"},
    "active": {"zh_CN": "活跃人数", "en": "Active"},
    "joins": {"zh_CN": "入群", "en": "Joins"},
    "leaves": {"zh_CN": "退群", "en": "Leaves"},
    "member": {"zh_CN": "成员", "en": "Member"},
    "user_id": {"zh_CN": "成员ID", "en": "User id"},
    "joined": {"zh_CN": "入群时间", "en": "Joined"},
    "first_seen": {"zh_CN": "首次出现", "en": "First seen"},
    "last_message": {"zh_CN": "最后发言", "en": "Last message"},
    "messages_in_period": {"zh_CN": "本期消息", "en": "Messages in period"},
    "status": {"zh_CN": "状态", "en": "Status"},
    "segment": {"zh_CN": "分层", "en": "Segment"},
    "streak": {"zh_CN": "连续活跃天数", "en": "Active streak (days)"},
    "opted_out": {"zh_CN": "已退出排行", "en": "opted out"},
    "status_join": {"zh_CN": "在群", "en": "in group"},
    "status_leave": {"zh_CN": "已退群", "en": "left"},
    "status_removed": {"zh_CN": "被移出", "en": "removed"},
    "search": {"zh_CN": "搜索昵称或ID", "en": "Search name or id"},
    "download": {"zh_CN": "下载", "en": "Download"},
    "shown_of": {"zh_CN": "显示 {shown} / 共 {total} 人", "en": "{shown} of {total} shown"},
    "next_page": {"zh_CN": "下一页", "en": "Next page"},
    "prev_page": {"zh_CN": "上一页", "en": "Previous page"},
    "no_alerts": {
        "zh_CN": "这个时段没有告警。",
        "en": "No alerts in this period.",
    },
    "time": {"zh_CN": "时间", "en": "Time"},
    "kind": {"zh_CN": "类型", "en": "Kind"},
    "state": {"zh_CN": "状态", "en": "State"},
    "detail": {"zh_CN": "内容", "en": "Detail"},
    "signin_title": {"zh_CN": "登录看板", "en": "Sign in"},
    "signin_hint": {
        "zh_CN": "运营者:在群里或私聊中向机器人发送 /看板,点击私聊收到的链接即可登录。",
        "en": "Operators: send /dashboard to the bot and tap the link it sends you privately.",
    },
    "admin_token": {"zh_CN": "管理员令牌", "en": "Admin token"},
    "sign_in": {"zh_CN": "登录", "en": "Sign in"},
    "signin_failed": {
        "zh_CN": "登录失败:链接无效、已过期或已被使用。请重新发送 /看板 获取新链接。",
        "en": "Sign-in failed: the link is invalid, expired or already used. Send /dashboard "
        "again for a new one.",
    },
    "forbidden": {
        "zh_CN": "你不是这个群的运营者,无权查看。",
        "en": "You do not run this group, so you cannot see it.",
    },
    "not_found": {"zh_CN": "没有这个页面。", "en": "No such page."},
    "bad_period": {"zh_CN": "周期有误:{error}", "en": "Bad period: {error}"},
    "weekdays": {"zh_CN": "一,二,三,四,五,六,日", "en": "Mon,Tue,Wed,Thu,Fri,Sat,Sun"},
    "signed_in_as": {"zh_CN": "已登录:{who}", "en": "Signed in: {who}"},
    "admin": {"zh_CN": "管理员", "en": "admin"},
}

#: Names of catalogue metrics beyond those :mod:`analytics.labels` knows yet.
EXTRA_METRIC_NAMES: dict[str, dict[Locale, str]] = {
    "retention_d1": {"zh_CN": "次日留存", "en": "Day-1 retention"},
    "retention_d7": {"zh_CN": "7 日留存", "en": "Day-7 retention"},
    "retention_d30": {"zh_CN": "30 日留存", "en": "Day-30 retention"},
    "conversion_rate": {"zh_CN": "转化率", "en": "Conversion rate"},
    "participation_rate": {"zh_CN": "参与度", "en": "Participation rate"},
    "participants": {"zh_CN": "活动参与人数", "en": "Participants"},
    "gmv": {"zh_CN": "营销额", "en": "GMV"},
    "aov": {"zh_CN": "客单价", "en": "Average order value"},
    "paid_members": {"zh_CN": "会员数", "en": "Paid members"},
    "profit": {"zh_CN": "利润", "en": "Profit"},
    "profit_margin": {"zh_CN": "利润率", "en": "Profit margin"},
}


def w(key: str, locale: Locale, **values: object) -> str:
    """The dashboard word ``key`` in ``locale`` with ``values`` filled in."""
    return WORDS[key][locale].format(**values)


def metric_label(metric_id: str, locale: Locale) -> str:
    """A metric's name: from :mod:`analytics.labels`, else from the list here, else its id."""
    name = metric_name(metric_id, locale)
    if name != metric_id:
        return name
    return EXTRA_METRIC_NAMES.get(metric_id, {}).get(locale, metric_id)
