"""Alert evaluator: thresholds, hysteresis, re-alert, snooze, quiet hours, signal loss, state."""

from __future__ import annotations

import json

import numpy as np
import pytest

from algorithms.evaluator import (
    AlertInputs,
    EvaluatorState,
    EventType,
    RuleState,
    episode_key,
    evaluate,
    latest_of,
    snooze,
    tick,
)
from algorithms.rules import QuietPeriod, Rule, RuleKind, Severity, default_rules, with_mandatory

FIVE = 300.0
MONDAY = 1_704_067_200.0  # 2024-01-01 00:00 UTC, a Monday


def _run(rules, g, *, ts=None, start=MONDAY, tz=0, state=None, **signals):
    ts = start + np.arange(len(g)) * FIVE if ts is None else np.asarray(ts, dtype=float)
    inputs = AlertInputs(ts, glucose_mgdl=np.asarray(g, dtype=float), **signals)
    return evaluate(
        rules, state or EvaluatorState(), inputs, now_s=float(ts[-1]), tz=tz, max_alert_age_s=1e12
    )


def _kinds(events):
    return [(str(e.rule), str(e.type)) for e in events]


def test_low_fires_once_and_clears() -> None:
    _, ev = _run([Rule(RuleKind.LOW)], [100, 80, 70, 65, 68, 90, 100])
    assert _kinds(ev) == [("low", "fired"), ("low", "cleared")]
    assert ev[0].value == 70.0 and ev[0].ts_s == MONDAY + 2 * FIVE  # 70 is at the threshold
    assert ev[0].severity is Severity.WARNING and ev[0].threshold == 70.0


def test_hysteresis_stops_flapping_around_the_limit() -> None:
    g = [72, 69, 71, 69, 72, 68, 75, 69, 79, 81]
    _, ev = _run([Rule(RuleKind.LOW, hysteresis=10, realert_s=7200)], g)
    assert _kinds(ev) == [("low", "fired"), ("low", "cleared")]
    assert ev[1].value == 81.0
    _, ev0 = _run([Rule(RuleKind.LOW, hysteresis=0, realert_s=7200)], g)
    assert len([e for e in ev0 if e.type is EventType.FIRED]) == 4


def test_realert_interval_repeats_a_standing_alert() -> None:
    g = [60.0] * 24  # two hours below 70 at 5-minute readings
    _, ev = _run([Rule(RuleKind.LOW, realert_s=1800)], g)
    assert _kinds(ev) == [("low", "fired")] + [("low", "repeated")] * 3
    assert np.diff([e.ts_s for e in ev]).tolist() == [1800.0] * 3


def test_urgent_low_is_fixed_and_cannot_be_disabled_or_snoozed() -> None:
    with pytest.raises(ValueError):
        Rule(RuleKind.URGENT_LOW, enabled=False)
    with pytest.raises(ValueError):
        Rule(RuleKind.URGENT_LOW, threshold=50)
    with pytest.raises(ValueError):
        snooze(EvaluatorState(), RuleKind.URGENT_LOW, MONDAY + 3600)
    rules = with_mandatory([Rule(RuleKind.HIGH)], "glucose")
    assert any(r.kind is RuleKind.URGENT_LOW for r in rules)
    _, ev = _run(rules, [100, 56, 55, 54])
    assert _kinds(ev) == [("urgent_low", "fired")] and ev[0].severity is Severity.URGENT


def test_disabled_rule_never_fires() -> None:
    _, ev = _run([Rule(RuleKind.HIGH, enabled=False)], [300, 320, 330])
    assert ev == []


def test_urgent_low_soon_uses_the_prediction() -> None:
    g = [120, 110, 100, 90]
    pred = [100, 80, 54.9, 40]
    _, ev = _run([Rule(RuleKind.URGENT_LOW_SOON)], g, glucose_pred_20_mgdl=np.array(pred))
    assert _kinds(ev) == [("urgent_low_soon", "fired")] and ev[0].value == 54.9


def test_rise_and_fall_rate_rules() -> None:
    rate = np.array([0.0, 2.0, 3.1, 3.5, 1.0, -3.2, -1.0])
    rules = [Rule(RuleKind.RISE, enabled=True), Rule(RuleKind.FALL, enabled=True)]
    _, ev = _run(rules, [120] * 7, glucose_rate_mgdl_per_min=rate)
    assert _kinds(ev) == [
        ("rise", "fired"),
        ("rise", "cleared"),
        ("fall", "fired"),
        ("fall", "cleared"),
    ]
    assert ev[2].value == -3.2


def test_quiet_hours_hold_back_warnings_until_they_end() -> None:
    quiet = (QuietPeriod(22 * 60, 7 * 60),)  # 22:00-07:00 every night
    rule = Rule(RuleKind.HIGH, threshold=200, quiet=quiet)
    start = MONDAY + 6 * 3600  # 06:00 UTC
    g = [250.0] * 18  # 06:00-07:25
    _, ev = _run([rule], g, start=start)
    assert _kinds(ev) == [("high", "fired")]
    assert ev[0].ts_s == MONDAY + 7 * 3600


def test_quiet_hours_use_the_persons_timezone() -> None:
    rule = Rule(RuleKind.HIGH, threshold=200, quiet=(QuietPeriod(22 * 60, 7 * 60),))
    start = MONDAY + 12 * 3600  # noon UTC is 23:00 in UTC+11 (quiet), 13:00 in UTC (not)
    _, ev_utc = _run([rule], [250.0], start=start, tz=0)
    _, ev_syd = _run([rule], [250.0], start=start, tz="Australia/Sydney")
    assert len(ev_utc) == 1 and ev_syd == []


def test_weekday_quiet_period_applies_only_on_its_days() -> None:
    rule = Rule(RuleKind.HIGH, threshold=200, quiet=(QuietPeriod(0, 1440, (5, 6)),))  # weekends
    _, ev_mon = _run([rule], [250.0], start=MONDAY + 3600)
    _, ev_sat = _run([rule], [250.0], start=MONDAY + 5 * 86400 + 3600)
    assert len(ev_mon) == 1 and ev_sat == []


def test_quiet_hours_do_not_hold_back_urgent_rules() -> None:
    quiet = (QuietPeriod(0, 1440),)
    rules = [Rule(RuleKind.URGENT_LOW, quiet=quiet), Rule(RuleKind.LOW, quiet=quiet)]
    _, ev = _run(rules, [50.0, 50.0])
    assert _kinds(ev) == [("urgent_low", "fired")]


def test_snooze_holds_back_then_fires() -> None:
    st = snooze(EvaluatorState(), RuleKind.HIGH, MONDAY + 3600)
    _, ev = _run([Rule(RuleKind.HIGH)], [300.0] * 15, state=st)
    assert _kinds(ev) == [("high", "fired")] and ev[0].ts_s == MONDAY + 3600


def test_duration_delays_fever_until_sustained() -> None:
    ts = MONDAY + np.arange(40) * 60.0
    core = np.where(np.arange(40) >= 5, 38.2, 37.0)
    _, ev = evaluate(
        [Rule(RuleKind.FEVER, duration_s=1800)],
        EvaluatorState(),
        AlertInputs(ts, core_c=core),
        now_s=float(ts[-1]),
    )
    assert _kinds(ev) == [("fever", "fired")] and ev[0].ts_s == ts[35]


def test_signal_loss_from_clock_tick_and_cleared_by_a_reading() -> None:
    rules = default_rules("glucose")
    st, _ = _run(rules, [120.0, 121.0])
    last = MONDAY + FIVE
    st, ev = tick(rules, st, now_s=last + 19 * 60)
    assert ev == []
    st, ev = tick(rules, st, now_s=last + 20 * 60)
    assert _kinds(ev) == [("signal_loss", "fired")] and ev[0].value == 20.0
    st, ev = tick(rules, st, now_s=last + 30 * 60)
    assert ev == []  # re-alert interval not yet reached
    st, ev = tick(rules, st, now_s=last + 80 * 60)
    assert _kinds(ev) == [("signal_loss", "repeated")]
    st, ev = _run(rules, [118.0], start=last + 85 * 60, state=st)
    assert _kinds(ev) == [("signal_loss", "cleared")]


def test_signal_loss_detected_when_a_batch_is_evaluated_late() -> None:
    rules = [Rule(RuleKind.SIGNAL_LOSS, threshold=10)]
    ts = MONDAY + np.arange(3) * FIVE
    _, ev = evaluate(
        rules,
        EvaluatorState(),
        AlertInputs(ts, glucose_mgdl=np.full(3, 100.0)),
        now_s=float(ts[-1]) + 900,
    )
    assert _kinds(ev) == [("signal_loss", "fired")]


def test_tick_repeats_a_standing_alert_while_data_is_fresh() -> None:
    rules = [Rule(RuleKind.URGENT_LOW), Rule(RuleKind.SIGNAL_LOSS, threshold=40)]
    st, ev = _run(rules, [50.0])
    assert len(ev) == 1
    _, ev = tick(rules, st, now_s=MONDAY + 1799)
    assert ev == []  # re-alert interval (30 min) not reached
    _, ev = tick(rules, st, now_s=MONDAY + 1800)
    assert _kinds(ev) == [("urgent_low", "repeated")] and ev[0].value == 50.0
    # With a 20-minute signal-loss limit the value is stale at 30 minutes: signal loss speaks.
    rules = [Rule(RuleKind.URGENT_LOW), Rule(RuleKind.SIGNAL_LOSS, threshold=20)]
    _, ev = tick(rules, st, now_s=MONDAY + 1800)
    assert _kinds(ev) == [("signal_loss", "fired")]


def test_old_readings_update_state_without_notifying() -> None:
    ts = MONDAY + np.arange(3) * FIVE
    st, ev = evaluate(
        [Rule(RuleKind.LOW)],
        EvaluatorState(),
        AlertInputs(ts, glucose_mgdl=np.full(3, 60.0)),
        now_s=ts[-1] + 7200,
    )
    assert ev == [] and st.rule(RuleKind.LOW).active


def test_readings_older_than_the_last_evaluated_are_ignored() -> None:
    st, _ = _run([Rule(RuleKind.LOW)], [100.0, 100.0])
    st2, ev = _run([Rule(RuleKind.LOW)], [50.0], start=MONDAY, state=st)
    assert ev == [] and st2 == st


def test_state_is_json_serialisable_and_round_trips() -> None:
    rules = default_rules("glucose")
    st, _ = _run(rules, [60.0, 50.0, 45.0], glucose_pred_20_mgdl=np.array([40.0, 30.0, 30.0]))
    st = snooze(st, RuleKind.HIGH, MONDAY + 7200)
    text = json.dumps(st.to_dict())
    back = EvaluatorState.from_dict(json.loads(text))
    assert back == st
    assert len(text) < 2000
    assert EvaluatorState.from_dict(None) == EvaluatorState()


def test_rules_round_trip_through_dicts() -> None:
    r = Rule(RuleKind.HIGH, threshold=220, quiet=(QuietPeriod(1320, 420, (0, 1)),))
    assert Rule.from_dict(json.loads(json.dumps(r.to_dict()))) == r


def test_batch_and_reading_by_reading_give_the_same_events() -> None:
    rng = np.random.default_rng(3)
    g = 150 + 120 * np.sin(np.arange(300) / 20) + rng.normal(0, 5, 300)
    rules = default_rules("glucose")
    _, whole = _run(rules, g)
    st, parts = EvaluatorState(), []
    for i in range(g.size):
        st, ev = _run(rules, g[i : i + 1], start=MONDAY + i * FIVE, state=st)
        parts += ev
    assert _kinds(parts) == _kinds(whole) and len(whole) > 4
    assert [e.ts_s for e in parts] == [e.ts_s for e in whole]


def test_temperature_rules_and_sensor_problem() -> None:
    ts = MONDAY + np.arange(60) * 60.0
    core = np.concatenate((np.full(20, 39.8), np.full(40, np.nan)))
    problem = np.concatenate((np.zeros(20), np.ones(40)))
    _, ev = evaluate(
        default_rules("temperature"),
        EvaluatorState(),
        AlertInputs(ts, core_c=core, sensor_problem=problem),
        now_s=float(ts[-1]),
        max_alert_age_s=1e12,
    )
    assert ("high_fever", "fired") in _kinds(ev)
    assert ("sensor_problem", "fired") in _kinds(ev)
    assert ("hypothermia", "fired") not in _kinds(ev)


def test_episode_key_leaves_out_what_every_reading_changes() -> None:
    a = EvaluatorState({"low": RuleState(on=True, on_since_s=10.0, last_value=65.0)}, 100.0)
    b = EvaluatorState({"low": RuleState(on=True, on_since_s=10.0, last_value=61.0)}, 160.0)
    assert episode_key(a) == episode_key(b)
    assert episode_key(a) != episode_key(EvaluatorState({"low": RuleState(on=True)}, 100.0))
    assert episode_key(a) != episode_key(EvaluatorState({}, 100.0))


def test_latest_of_keeps_the_episodes_and_takes_the_latest_values() -> None:
    episodes = EvaluatorState(
        {
            "low": RuleState(on=True, on_since_s=10.0, last_value=65.0),
            "high": RuleState(snoozed_until_s=500.0, last_value=180.0),
        },
        100.0,
    )
    latest = EvaluatorState(
        {
            "low": RuleState(on=True, on_since_s=10.0, active=True, last_value=61.0),
            "urgent_low": RuleState(last_value=61.0),
        },
        160.0,
    )
    merged = latest_of(episodes, latest)
    assert merged == EvaluatorState(
        {
            # the high rule saw no value since: back to its default but for the snooze
            "high": RuleState(snoozed_until_s=500.0),
            "low": RuleState(on=True, on_since_s=10.0, last_value=61.0),
            "urgent_low": RuleState(last_value=61.0),
        },
        160.0,
    )
    # A rule at its default on both sides is left out, as the evaluator leaves it out.
    assert latest_of(EvaluatorState({"low": RuleState()}, 1.0), EvaluatorState({}, 2.0)) == (
        EvaluatorState({}, 2.0)
    )
