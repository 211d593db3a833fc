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
    "participants": {"zh_CN": "活动参与人数", "en": "Participants"},
    "participation_rate": {"zh_CN": "参与度", "en": "Participation rate"},
    "stickiness": {"zh_CN": "用户黏性", "en": "Stickiness"},
    "behaviours": {"zh_CN": "特定行为", "en": "Behaviours"},
    "hour_histogram": {"zh_CN": "消息的时间分布", "en": "Messages by hour"},
    "heatmap": {"zh_CN": "星期×小时分布", "en": "Weekday × hour"},
    "topics": {"zh_CN": "话题频次", "en": "Topics"},
    "top_words": {"zh_CN": "内容高频词", "en": "Top words"},
    "sentiment_split": {"zh_CN": "观点倾向分布", "en": "Sentiment split"},
    "conversion_rate": {"zh_CN": "转化率", "en": "Conversion rate"},
    "gmv": {"zh_CN": "营销额(元)", "en": "GMV (CNY)"},
    "profit": {"zh_CN": "利润(元)", "en": "Profit (CNY)"},
    "profit_margin": {"zh_CN": "利润率", "en": "Profit margin"},
    "aov": {"zh_CN": "客单价(元)", "en": "AOV (CNY)"},
    "paid_members": {"zh_CN": "会员数", "en": "Paid members"},
    "retention_d1": {"zh_CN": "次日留存", "en": "Day-1 retention"},
    "retention_d7": {"zh_CN": "7日留存", "en": "Day-7 retention"},
    "retention_d30": {"zh_CN": "30日留存", "en": "Day-30 retention"},
    "segments": {"zh_CN": "用户分层", "en": "Segments"},
    "funnel": {"zh_CN": "转化漏斗", "en": "Funnel"},
    "churn_profile": {"zh_CN": "流失画像", "en": "Churn profile"},
    "anomalies": {"zh_CN": "异常", "en": "Anomalies"},
    "targets": {"zh_CN": "目标达成", "en": "Targets"},
    "operator_score": {"zh_CN": "运营贡献度", "en": "Operator score"},
}

#: Names of the parts of object-valued metrics.
PART_NAMES: dict[str, dict[str, str]] = {
    "positive": {"zh_CN": "正面", "en": "positive"},
    "neutral": {"zh_CN": "中性", "en": "neutral"},
    "negative": {"zh_CN": "负面", "en": "negative"},
    "mean": {"zh_CN": "平均分", "en": "mean"},
    "checkins": {"zh_CN": "打卡", "en": "check-ins"},
    "shares": {"zh_CN": "分享", "en": "shares"},
    "red_packets": {"zh_CN": "红包", "en": "red packets"},
    "images": {"zh_CN": "图片", "en": "images"},
    "mentions": {"zh_CN": "@提及", "en": "@-mentions"},
    "high": {"zh_CN": "高", "en": "high"},
    "mid": {"zh_CN": "中", "en": "mid"},
    "low": {"zh_CN": "低", "en": "low"},
    "high_active": {"zh_CN": "高活跃", "en": "high-active"},
    "churn_warning": {"zh_CN": "流失预警", "en": "churn warning"},
    "silent": {"zh_CN": "沉默", "en": "silent"},
    "joined": {"zh_CN": "入群", "en": "joined"},
    "first_message": {"zh_CN": "首次发言", "en": "first message"},
    "participated": {"zh_CN": "参与活动", "en": "took part"},
    "paid": {"zh_CN": "首次付费", "en": "paid"},
    "peak_hour": {"zh_CN": "高峰时段", "en": "peak hour"},
    "peak_weekday": {"zh_CN": "高峰星期", "en": "peak weekday"},
    "left": {"zh_CN": "已退群", "en": "left"},
    "stayed": {"zh_CN": "留存成员", "en": "stayed"},
    "met": {"zh_CN": "达成", "en": "met"},
    "missed": {"zh_CN": "未达成", "en": "missed"},
    "no_data": {"zh_CN": "无数据", "en": "no data"},
    "none": {"zh_CN": "无", "en": "none"},
    "grade": {"zh_CN": "评级", "en": "grade"},
    "weekdays": {"zh_CN": "一二三四五六日", "en": "MTWTFSS"},
}


def part_name(key: str, locale: Locale) -> str:
    return PART_NAMES.get(key, {}).get(locale, key)


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
