"""The pure lifecycle rules: segments, anomalies, retention windows, score weighting."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from analytics import catalogue

END = datetime(2026, 9, 30, tzinfo=UTC)
LONG_AGO = END - timedelta(days=90)


def recent(
    user: str, last_7: int, previous_7: int, days: int, last_days_ago: float | None
) -> catalogue.MemberRecent:
    last = None if last_days_ago is None else END - timedelta(days=last_days_ago)
    return catalogue.MemberRecent(user, last_7, previous_7, days, last, LONG_AGO)


def test_segments_follow_the_documented_rules() -> None:
    members = [
        recent("daily", 20, 18, 6, 0.1),  # 6 of 7 days: high-active
        recent("fading", 2, 10, 2, 1),  # 2 against 10 the week before: churn warning
        recent("halved", 5, 10, 3, 1),  # exactly half: churn warning
        recent("steady", 6, 10, 3, 1),  # more than half: nothing
        recent("gone_quiet", 0, 4, 0, 10),  # silent 7-14 days after being active: warning
        recent("silent", 0, 0, 0, 20),  # nothing for 20 days: silent
        recent("never", 0, 0, 0, None),  # never spoke, member for 90 days: silent
        catalogue.MemberRecent("newcomer", 0, 0, 0, None, END - timedelta(days=3)),
    ]
    result = catalogue.segments(members, END, silent_days=14, high_active_days=4, locale="en")
    assert result["high_active"]["members"] == ["daily"]
    assert result["churn_warning"]["members"] == ["fading", "gone_quiet", "halved"]
    assert result["silent"]["members"] == ["never", "silent"]
    assert result["silent"]["action"] == "send a personalised nudge"


def test_anomaly_is_above_mean_plus_three_sigma_of_the_same_hour_of_week() -> None:
    hour = datetime(2026, 9, 18, 19)  # noqa: DTZ001 - local wall time, Friday 19:00
    history = {hour - timedelta(weeks=k): v for k, v in zip(range(1, 5), [2, 4, 2, 4], strict=True)}
    # mean 3, sigma 1: 6 is exactly mean + 3 sigma (not above), 7 is above
    at_edge = catalogue.anomalies(
        {"negative": {**history, hour: 6}}, [hour], 4, 3.0, {"negative": 3}
    )
    above = catalogue.anomalies({"negative": {**history, hour: 7}}, [hour], 4, 3.0, {"negative": 3})
    assert at_edge == []
    assert above == [
        {"measure": "negative", "hour": "2026-09-18T19:00", "value": 7, "mean": 3.0, "sigma": 1.0}
    ]
    quiet = catalogue.anomalies({"negative": {hour: 2}}, [hour], 4, 3.0, {"negative": 3})
    assert quiet == []  # below the minimum count


def test_retention_counts_only_cohorts_whose_window_has_passed() -> None:
    cohort = [("a", date(2026, 9, 1)), ("b", date(2026, 9, 1)), ("c", date(2026, 9, 20))]
    days = {"a": {date(2026, 9, 8)}, "b": {date(2026, 9, 1)}, "c": {date(2026, 9, 21)}}
    result = catalogue.retention(cohort, days, 7, last_complete_day=date(2026, 9, 24))
    # a spoke on day 7 (kept), b only on the join day (lost), c's window ends 09-27 (not yet)
    assert (result["value"], result["eligible"], result["retained"]) == (0.5, 2, 1)


def test_operator_score_leaves_out_parts_without_data() -> None:
    result = catalogue.operator_score(
        activity_rate=0.075,
        net_growth=0,
        members_at_start=10,
        mean_sentiment=None,
        conversion_rate=None,
        gmv_yuan=0.0,
        activity_target=0.15,
        conversion_target=0.05,
        gmv_target=None,
        weights=catalogue.ScoreWeights(),
    )
    # activity 0.5 (weight 0.3), growth 0.5 (weight 0.2): 0.25 / 0.5 = 50 -> C
    assert (result["value"], result["grade"]) == (50.0, "C")
