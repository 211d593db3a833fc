"""The rest of METRICS.md as pure functions: plain records in, JSON-ready values out.

Defaults and rules are documented here and in the README metric table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

WEEKDAYS = 7
HOURS = 24


def ratio(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator else None


# --- time distribution ------------------------------------------------------------


def hour_histogram(hourly: Mapping[datetime, int]) -> dict[str, Any]:
    """Messages by local hour of day 0–23 and the peak hour (earliest on a tie)."""
    counts = [0] * HOURS
    for hour, count in hourly.items():
        counts[hour.hour] += count
    peak = max(range(HOURS), key=lambda h: (counts[h], -h)) if any(counts) else None
    return {"counts": counts, "peak_hour": peak}


def heatmap(hourly: Mapping[datetime, int]) -> dict[str, Any]:
    """Messages by weekday (0 = Monday) × hour, with the peak weekday."""
    grid = [[0] * HOURS for _ in range(WEEKDAYS)]
    for hour, count in hourly.items():
        grid[hour.weekday()][hour.hour] += count
    totals = [sum(row) for row in grid]
    peak = max(range(WEEKDAYS), key=lambda d: (totals[d], -d)) if any(totals) else None
    return {"counts": grid, "weekday_totals": totals, "peak_weekday": peak}


# --- stickiness -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class StickinessRule:
    weight_days: float = 0.5
    weight_volume: float = 0.3
    weight_participation: float = 0.2
    high: float = 0.6
    mid: float = 0.3


def stickiness(
    members: Sequence[tuple[str, int, int, int]], period_days: int, rule: StickinessRule
) -> dict[str, Any]:
    """用户黏性 per member, from (user id, messages, active days, check-in days).

    score = (w_days × active_days / period_days + w_volume × messages / most messages of
    anyone + w_participation × check-in days / period_days) / (sum of weights), in [0, 1];
    high at or above ``rule.high``, mid at or above ``rule.mid``, else low.
    """
    total_weight = rule.weight_days + rule.weight_volume + rule.weight_participation
    most = max((m[1] for m in members), default=0)
    scored: list[dict[str, Any]] = []
    for user, messages, days, checkins in members:
        raw = (
            rule.weight_days * min(1.0, days / period_days)
            + rule.weight_volume * (messages / most if most else 0.0)
            + rule.weight_participation * min(1.0, checkins / period_days)
        )
        value = round(raw / total_weight, 4) if total_weight else 0.0
        level = "high" if value >= rule.high else "mid" if value >= rule.mid else "low"
        scored.append({"member": user, "score": value, "bucket": level})
    scored.sort(key=lambda e: (-e["score"], e["member"]))
    buckets = {
        name: sum(1 for e in scored if e["bucket"] == name) for name in ("high", "mid", "low")
    }
    return {
        "weights": {
            "days": rule.weight_days,
            "volume": rule.weight_volume,
            "participation": rule.weight_participation,
        },
        "cutoffs": {"high": rule.high, "mid": rule.mid},
        "buckets": buckets,
        "members": scored,
    }


# --- retention and funnel ---------------------------------------------------------


def retention(
    cohort: Sequence[tuple[str, date]],
    message_days: Mapping[str, set[date]],
    days: int,
    last_complete_day: date,
) -> dict[str, Any]:
    """Share of joiners (by join day d0) with a message on a local day in d0+1 … d0+days.

    Only joiners whose whole window has passed (d0 + days ≤ ``last_complete_day``) are
    counted, so a recent cohort is not reported as lost.
    """
    by_day: dict[date, list[int]] = {}
    for user, joined in cohort:
        if joined + timedelta(days=days) > last_complete_day:
            continue
        window = {joined + timedelta(days=n) for n in range(1, days + 1)}
        kept = 1 if message_days.get(user, set()) & window else 0
        by_day.setdefault(joined, []).append(kept)
    eligible = sum(len(v) for v in by_day.values())
    retained = sum(sum(v) for v in by_day.values())
    return {
        "value": ratio(retained, eligible),
        "eligible": eligible,
        "retained": retained,
        "cohorts": [
            {
                "day": d.isoformat(),
                "joined": len(v),
                "retained": sum(v),
                "rate": ratio(sum(v), len(v)),
            }
            for d, v in sorted(by_day.items())
        ],
    }


def funnel(joined: int, first_message: int, participated: int, paid: int) -> dict[str, Any]:
    """join → first message → activity participation → first paid order, with step rates."""
    steps = [
        ("joined", joined),
        ("first_message", first_message),
        ("participated", participated),
        ("paid", paid),
    ]
    result = []
    for index, (name, count) in enumerate(steps):
        previous = steps[index - 1][1] if index else None
        result.append(
            {
                "step": name,
                "members": count,
                "step_rate": ratio(count, previous) if previous is not None else None,
            }
        )
    return {"steps": result, "overall_rate": ratio(paid, joined)}


# --- segments and churn -----------------------------------------------------------

SEGMENT_ACTIONS = {
    "high_active": {"zh_CN": "给予 VIP 权益或专属福利", "en": "offer VIP perks"},
    "churn_warning": {"zh_CN": "一对一私聊沟通", "en": "contact personally"},
    "silent": {"zh_CN": "个性化唤醒(私信提醒、专属内容)", "en": "send a personalised nudge"},
}


@dataclass(frozen=True, slots=True)
class MemberRecent:
    user: str
    last_7: int
    previous_7: int
    days_last_7: int
    last_at: datetime | None
    first_seen_at: datetime


def segments(
    members: Sequence[MemberRecent],
    end: datetime,
    silent_days: int,
    high_active_days: int,
    locale: str,
) -> dict[str, Any]:
    """High-active, churn-warning and silent members as of ``end``, each with an action.

    - high_active: messages on at least ``high_active_days`` of the last 7 days;
    - silent: no message for ``silent_days`` days (and a member at least that long);
    - churn_warning: not silent, and the last 7 days have at most half the messages of the
      7 before (which includes "silent 7–14 days after having been active").
    """
    silent_since = end - timedelta(days=silent_days)
    groups: dict[str, list[str]] = {"high_active": [], "churn_warning": [], "silent": []}
    for m in members:
        spoke_lately = m.last_at is not None and m.last_at >= silent_since
        if not spoke_lately:
            if m.first_seen_at <= silent_since:
                groups["silent"].append(m.user)
            continue
        if m.days_last_7 >= high_active_days:
            groups["high_active"].append(m.user)
        elif m.previous_7 > 0 and m.last_7 * 2 <= m.previous_7:
            groups["churn_warning"].append(m.user)
    return {
        name: {
            "count": len(users),
            "members": sorted(users),
            "action": SEGMENT_ACTIONS[name].get(locale, SEGMENT_ACTIONS[name]["en"]),
        }
        for name, users in groups.items()
    }


def profile(facts: Sequence[tuple[int, int, int]], people: int, scale: int) -> dict[str, Any]:
    """Messages per person, share with any message, mean sentiment (4 decimals).

    ``facts`` holds per person (messages, sum of scores in 1/``scale``, scored messages).
    """
    messages = sum(n for n, _, _ in facts)
    total = sum(t for _, t, _ in facts)
    scored = sum(c for _, _, c in facts)
    return {
        "members": people,
        "messages_per_member": ratio(messages, people),
        "active_share": ratio(sum(1 for n, _, _ in facts if n), people),
        "mean_sentiment": round(total / scored / scale, 4) if scored else None,
    }


# --- anomalies --------------------------------------------------------------------


def anomalies(
    series: Mapping[str, Mapping[datetime, int]],
    hours: Sequence[datetime],
    weeks: int,
    sigmas: float,
    minimums: Mapping[str, int],
) -> list[dict[str, Any]]:
    """Hours whose value is above mean + ``sigmas`` σ of the same hour in past weeks.

    ``series`` maps a measure (messages, negative, leaves) to counts per local hour;
    ``hours`` are the period's local hours. The baseline is the same weekday and hour in
    each of the ``weeks`` weeks before (absent hours count 0); σ is the population
    standard deviation. Hours below the measure's minimum count are never anomalies.
    """
    found = []
    for measure, counts in series.items():
        for hour in hours:
            value = counts.get(hour, 0)
            if value < minimums.get(measure, 1):
                continue
            past = [counts.get(hour - timedelta(weeks=k), 0) for k in range(1, weeks + 1)]
            mean = sum(past) / len(past)
            sigma = math.sqrt(sum((p - mean) ** 2 for p in past) / len(past))
            if value > mean + sigmas * sigma:
                found.append(
                    {
                        "measure": measure,
                        "hour": hour.isoformat(timespec="minutes"),
                        "value": value,
                        "mean": round(mean, 4),
                        "sigma": round(sigma, 4),
                    }
                )
    found.sort(key=lambda a: (a["hour"], a["measure"]))
    return found


# --- targets and scores -----------------------------------------------------------


def targets(
    goals: Mapping[str, float | None], actual: Mapping[str, float | None]
) -> dict[str, Any]:
    """Actual against each set goal; ``met`` is None when the actual is unknown."""
    return {
        key: {
            "target": goal,
            "actual": actual.get(key),
            "met": None if actual.get(key) is None else bool(actual[key] >= goal),  # type: ignore[operator]
        }
        for key, goal in goals.items()
        if goal is not None
    }


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    activity: float = 0.3
    growth: float = 0.2
    sentiment: float = 0.2
    conversion: float = 0.2
    gmv: float = 0.1


def operator_score(
    *,
    activity_rate: float | None,
    net_growth: int,
    members_at_start: int,
    mean_sentiment: float | None,
    conversion_rate: float | None,
    gmv_yuan: float,
    activity_target: float,
    conversion_target: float,
    gmv_target: float | None,
    weights: ScoreWeights,
) -> dict[str, Any]:
    """贡献度评价: weighted parts in [0, 1], a 0–100 score and a grade A/B/C/D.

    Parts: activity = activity_rate ÷ its target (capped at 1); growth = 0.5 + 10 × net
    growth ÷ members at start, clamped to [0, 1] (±5% maps to 1 / 0); sentiment = the mean
    score; conversion = conversion_rate ÷ its target (capped); gmv = GMV ÷ ``targets.gmv``
    (capped). A part without data (no scored texts, no orders, no GMV target) is left out
    and the other weights rescaled. Grade: A ≥ 80, B ≥ 60, C ≥ 40, else D.
    """
    growth_rate = (
        net_growth / members_at_start if members_at_start else (1.0 if net_growth > 0 else 0.0)
    )
    parts: dict[str, float | None] = {
        "activity": None if activity_rate is None else min(1.0, activity_rate / activity_target),
        "growth": max(0.0, min(1.0, 0.5 + 10 * growth_rate)),
        "sentiment": mean_sentiment,
        "conversion": None
        if conversion_rate is None
        else min(1.0, conversion_rate / conversion_target),
        "gmv": None if not gmv_target else min(1.0, gmv_yuan / gmv_target),
    }
    weight_of = {
        "activity": weights.activity,
        "growth": weights.growth,
        "sentiment": weights.sentiment,
        "conversion": weights.conversion,
        "gmv": weights.gmv,
    }
    used = {k: v for k, v in parts.items() if v is not None and weight_of[k] > 0}
    total = sum(weight_of[k] for k in used)
    value = (
        round(100 * sum(weight_of[k] * v for k, v in used.items()) / total, 1) if total else None
    )
    grade = None
    if value is not None:
        grade = "A" if value >= 80 else "B" if value >= 60 else "C" if value >= 40 else "D"
    return {
        "value": value,
        "grade": grade,
        "parts": {k: (round(v, 4) if v is not None else None) for k, v in parts.items()},
        "weights": weight_of,
    }
