"""The many-devices, one-reading-each functions give what the per-device ones give.

``kalman_step_many``, ``process_glucose_latest`` and ``evaluate_latest`` compute one new reading
of many devices as arrays; each is run here beside the per-device function it replaces on a
fleet whose readings and settings walk through every branch (gaps, re-sent and NaN readings,
jumps confirmed or not, outliers; hysteresis, durations, re-alerts, snoozes, quiet hours in
fixed offsets and zones, disabled rules, signal loss), and every result must be equal: the
same floats, the same states, the same events in the same order.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from algorithms import evaluator
from algorithms.evaluator import (
    AlertInputs,
    EvaluatorState,
    RuleState,
    episode_key,
    evaluate,
    evaluate_latest,
    snooze,
)
from algorithms.glucose_stream import process_glucose, process_glucose_latest
from algorithms.rules import QuietPeriod, Rule, RuleKind, Signal, default_rules
from algorithms.sensors import spec_for
from algorithms.smoothing import KalmanState, KalmanStates, kalman_glucose, kalman_step_many
from algorithms.trend import rate_per_min, rates_at_many
from algorithms.validation import acceptable, validate_readings

T0 = 1_800_000_000.0
KALMAN_FIELDS = ("level_mgdl", "rate_mgdl_per_min", "level_var", "rate_var", "cov_level_rate")
STREAM_FIELDS = ("raw_mgdl", "smoothed_mgdl", "alert_mgdl", "rate_mgdl_per_min", "pred_20_mgdl",
                 "pred_20_sd_mgdl", "pred_30_mgdl", "pred_30_sd_mgdl", "flags")  # fmt: skip


def same(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal element by element, NaN equal to NaN."""
    return bool(np.array_equal(np.asarray(a), np.asarray(b), equal_nan=a.dtype.kind == "f"))


def walk(devices: int, steps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Times and readings per step: mostly a minute apart, sometimes a gap past the filter's
    20 minutes, a re-sent or older time, a NaN (filter only), a jump or an outlier."""
    rng = np.random.default_rng(seed)
    dt = rng.choice(
        [60.0, 300.0, 1500.0, -30.0, 0.0], (steps, devices), p=[0.7, 0.2, 0.04, 0.03, 0.03]
    )
    ts = T0 + np.cumsum(dt, axis=0)
    level = 120 + np.cumsum(rng.normal(0, 3, (steps, devices)), axis=0)
    jumps = np.where(
        rng.random((steps, devices)) < 0.06, rng.choice([-90.0, 38.0, 150.0], (steps, devices)), 0
    )
    return ts, np.clip(level + jumps, 20, 600)


def test_kalman_step_many_is_kalman_glucose_reading_by_reading() -> None:
    ts, values = walk(devices=150, steps=150, seed=3)
    values[np.random.default_rng(4).random(values.shape) < 0.03] = np.nan
    states: list[KalmanState | None] = [None] * ts.shape[1]
    verdicts = np.zeros(4, int)
    for t, z in zip(ts, values, strict=True):
        got, new = kalman_step_many(t, z, KalmanStates.gather(states))
        new_states = new.scatter()
        for i, state in enumerate(states):
            one = kalman_glucose(t[i : i + 1], z[i : i + 1], state)
            for name in KALMAN_FIELDS:
                assert same(getattr(got, name)[i : i + 1], getattr(one, name)), name
            flags = (one.outlier[0], one.implausible_jump[0], one.restarted[0])
            assert (got.outlier[i], got.implausible_jump[i], got.restarted[i]) == flags
            assert new_states[i] == one.state
            verdicts[[0, *np.flatnonzero(flags) + 1][-1]] += 1
            states[i] = one.state
    assert got.state is None
    assert (verdicts > 5).all()  # every verdict was seen, several times: ok, outlier, jump, restart
    assert any(s is not None and s.rejected_mgdl is not None for s in states)


def test_kalman_states_round_trip_keeps_none_and_pending_readings() -> None:
    pending = KalmanState(T0, 100.0, -1.5, 60.0, 2.0, 0.3, 99.0, T0 - 60, 210.0)
    settled = KalmanState(T0, 100.0, 0.0, 64.0, 0.0, 4.0, 100.0, T0, None)
    arrays = KalmanStates.gather([None, pending, settled])
    assert arrays.started.tolist() == [False, True, True]
    assert math.isnan(arrays.rejected_mgdl[2])
    assert arrays.scatter() == [None, pending, settled]
    assert KalmanStates.gather([]).scatter() == []


def test_process_glucose_latest_is_process_glucose_of_one_reading() -> None:
    ts, values = walk(devices=100, steps=100, seed=5)
    states: list[KalmanState | None] = [None] * ts.shape[1]
    for t, g in zip(ts, values, strict=True):
        got, new = process_glucose_latest(t, g, KalmanStates.gather(states))
        for i, state in enumerate(states):
            one, states[i] = process_glucose(t[i : i + 1], g[i : i + 1], state)
            for name in STREAM_FIELDS:
                assert same(getattr(got, name)[i : i + 1], getattr(one, name)), name
            assert got.direction[i] == one.direction[0]
        assert new.scatter() == states


def settings(device: int) -> tuple[Rule, ...]:
    """Glucose rules that differ between devices: defaults, tighter limits with long
    durations and short re-alerts, rise and fall on, quiet hours (an offset or a zone, across
    midnight or not, urgent rules ignoring them), low disabled."""
    kind = device % 6
    if kind == 0:
        return default_rules("glucose")
    quiet = (QuietPeriod(1320, 420), QuietPeriod(600, 900, (0, 2, 4)))
    return (
        Rule(
            RuleKind.HIGH,
            threshold=160 + 10 * kind,
            duration_s=600 * (kind % 3),
            realert_s=900,
            quiet=quiet if kind in (2, 3) else (),
        ),
        Rule(
            RuleKind.LOW,
            threshold=90,
            hysteresis=0 if kind == 4 else 10,
            enabled=kind != 5,
            quiet=quiet,
        ),
        Rule(RuleKind.URGENT_LOW, quiet=quiet),
        Rule(RuleKind.URGENT_LOW_SOON, realert_s=600),
        Rule(RuleKind.RISE, threshold=1.0, enabled=True),
        Rule(RuleKind.FALL, threshold=1.0, enabled=True, duration_s=300),
        Rule(RuleKind.SIGNAL_LOSS, threshold=10 + kind, enabled=kind != 4),
        Rule(RuleKind.SENSOR_PROBLEM),
    )


def zone(device: int) -> float | str:
    return ("Europe/Paris", 0, -5 * 3600, "America/New_York", 3600)[device % 5]


def test_evaluate_latest_is_evaluate_of_one_reading() -> None:
    """Glucose devices over a day of sensor time (quiet hours come round) with readings
    that are sometimes late (older than the alert age, or past signal loss), snoozes set and
    lifted, and NaN values (unusable readings)."""
    rng = np.random.default_rng(11)
    devices, steps = 40, 288
    rules = [settings(d) for d in range(devices)]
    tzs = [zone(d) for d in range(devices)]
    states = [EvaluatorState() for _ in range(devices)]
    level = 130 + 90 * np.sin(np.arange(steps)[:, None] / rng.uniform(8, 40, devices))
    level = level + np.cumsum(rng.normal(0, 4, (steps, devices)), axis=0)
    seen: dict[str, int] = {}
    kept: dict[int, EvaluatorState] = {}  # each device's state as evaluate_latest gave it last
    keys_compared = 0
    for k in range(steps):
        now = T0 + 300.0 * k
        late = rng.choice([0.0, 600.0, 1200.0, 3000.0], devices, p=[0.9, 0.04, 0.03, 0.03])
        ts = now - late + rng.uniform(0, 5, devices)
        fresh = np.array(
            [
                s.last_reading_s is None or t > s.last_reading_s
                for s, t in zip(states, ts, strict=True)
            ]
        )
        g = np.where(rng.random(devices) < 0.05, np.nan, level[k])
        rate = np.where(rng.random(devices) < 0.2, np.nan, rng.normal(0, 1.5, devices))
        pred = g + 20 * np.nan_to_num(rate)
        for d in np.flatnonzero(rng.random(devices) < 0.01).tolist():
            kind = rng.choice([RuleKind.HIGH, RuleKind.LOW, RuleKind.FALL])
            until = None if rng.random() < 0.5 else now + rng.choice([-600.0, 1800.0])
            states[d] = snooze(states[d], kind, until)
        idx = np.flatnonzero(fresh)
        signals = {
            Signal.GLUCOSE: g[idx],
            Signal.GLUCOSE_RATE: rate[idx],
            Signal.GLUCOSE_PRED_20: pred[idx],
        }
        got_states, got_events = evaluate_latest(
            [rules[i] for i in idx], [states[i] for i in idx], ts[idx], signals,
            now_s=now, tzs=[tzs[i] for i in idx],
        )  # fmt: skip
        for j, i in enumerate(idx.tolist()):
            inputs = AlertInputs(ts[i : i + 1], g[i : i + 1], rate[i : i + 1], pred[i : i + 1])
            state, events = evaluate(rules[i], states[i], inputs, now_s=now, tz=tzs[i])
            assert got_states[j] == state and got_events[j] == events, (k, i)
            as_objects = EvaluatorState(got_states[j].rules, got_states[j].last_reading_s)
            assert episode_key(got_states[j]) == episode_key(as_objects), (k, i)
            before = kept.get(i)
            if before is not None:  # the key tells episodes apart, and nothing else
                same_key = episode_key(before) == episode_key(got_states[j])
                assert same_key == (episodes(before) == episodes(got_states[j])), (k, i)
                keys_compared += 1
            kept[i] = got_states[j]
            for e in events:
                seen[f"{e.rule}:{e.type}"] = seen.get(f"{e.rule}:{e.type}", 0) + 1
            # The next step takes half of the devices' states in the form evaluate_latest
            # gives (rows), the other half as evaluate gives them (RuleStates).
            states[i] = got_states[j] if (i + k) % 2 else state
    expected = {f"{r}:{t}" for r in ("high", "low", "urgent_low", "urgent_low_soon", "rise",
                "fall", "signal_loss") for t in ("fired", "cleared")}  # fmt: skip
    assert expected <= set(seen), sorted(expected - set(seen))
    assert seen.get("high:repeated", 0) > 0 and seen.get("low:repeated", 0) > 0
    assert keys_compared > devices * steps // 2


def episodes(state: EvaluatorState) -> dict[str, tuple]:
    """Each rule's episode (its state but the last value), those not initial."""
    out = {}
    for kind, rs in state.rules.items():
        episode = (rs.on, rs.on_since_s, rs.active, rs.notified, rs.last_notified_s,
                   rs.snoozed_until_s)  # fmt: skip
        if episode != (False, None, False, False, None, None):
            out[kind] = episode
    return out


def test_evaluate_latest_of_no_devices_and_of_odd_states() -> None:
    assert evaluate_latest([], [], np.zeros(0), {}, now_s=T0, tzs=[]) == ([], [])
    # Latched with no start recorded (state from an older version), and temperature rules
    # whose signal a glucose batch lacks (skipped, as evaluate skips them).
    rules = (Rule(RuleKind.HIGH, duration_s=0), Rule(RuleKind.FEVER))
    odd = EvaluatorState(rules={"high": RuleState(on=True)}, last_reading_s=T0 - 60)
    signals = {Signal.GLUCOSE: np.array([300.0])}
    got = evaluate_latest([rules], [odd], np.array([T0]), signals, now_s=T0, tzs=[0])
    inputs = AlertInputs(np.array([T0]), glucose_mgdl=np.array([300.0]))
    state, events = evaluate(rules, odd, inputs, now_s=T0)
    assert got == ([state], [events]) and [str(e.type) for e in events] == ["fired"]


def test_a_state_evaluate_refuses_is_refused_for_all_together() -> None:
    """Notified with no time recorded (a corrupt state): ``evaluate`` fails its assertion, so
    the call for many fails too, and the caller takes each device alone."""
    rules = (Rule(RuleKind.HIGH),)
    bad = EvaluatorState(rules={"high": RuleState(on=True, active=True, notified=True)})
    inputs = AlertInputs(np.array([T0]), glucose_mgdl=np.array([300.0]))
    with pytest.raises(AssertionError):
        evaluate(rules, bad, inputs, now_s=T0)
    signals = {Signal.GLUCOSE: np.array([120.0, 300.0])}
    with pytest.raises(ValueError, match="no recorded time"):
        evaluate_latest([rules, rules], [EvaluatorState(), bad], np.array([T0, T0]), signals,
                        now_s=T0, tzs=[0, 0])  # fmt: skip


def test_rule_plans_are_kept_per_tuple_and_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(evaluator, "_PLANS", {})
    monkeypatch.setattr(evaluator, "_MAX_PLANS", 2)
    rules = default_rules("glucose")
    assert evaluator._plan(rules) is evaluator._plan(rules)
    as_list = list(rules)
    assert evaluator._plan(as_list) == evaluator._plan(rules)
    assert evaluator._plan(as_list) is not evaluator._plan(as_list)  # a list is not kept
    others = [tuple(Rule(RuleKind.HIGH, threshold=t) for _ in "a") for t in (200, 210, 220)]
    plans = [evaluator._plan(r) for r in others]
    assert len(evaluator._PLANS) <= 2 and [p.value[0][3][0] for p in plans] == [200, 210, 220]


def test_rates_at_many_is_rate_per_min_of_each_stream() -> None:
    """Streams of different lengths padded into one array: the rate at each asked reading is
    bit for bit the rate ``rate_per_min`` gives over that stream alone."""
    rng = np.random.default_rng(8)
    lengths = np.array([0, 1, 2, 5, 17, 40])
    width = int(lengths.max())
    ts = T0 + np.cumsum(
        rng.choice([60.0, 120.0, 900.0], (lengths.size, width), p=[0.6, 0.3, 0.1]), axis=1
    )
    values = rng.uniform(40, 400, (lengths.size, width))
    rows = np.concatenate([np.full(n, r) for r, n in enumerate(lengths)])
    cols = np.concatenate([np.arange(n) for n in lengths])
    got = rates_at_many(ts, values, lengths, rows, cols)
    expected = np.concatenate(
        [rate_per_min(ts[r, :n], values[r, :n]) for r, n in enumerate(lengths)]
    )
    assert same(got, expected) and np.isfinite(got).sum() > 20 and np.isnan(got).sum() > 3


def test_acceptable_says_what_validate_readings_finds_per_reading() -> None:
    spec = spec_for("glucose")
    ts = np.array([T0, T0, T0, T0, 0.0, T0 + 3600, T0 + 60])
    values = np.array([100.0, np.nan, 10.0, 900.0, 100.0, 100.0, 600.0])
    flagged = {p.index for p in validate_readings(ts, values, spec, T0)}
    ok = acceptable(ts, values, spec.min_value, spec.max_value, T0)
    assert ok.tolist() == [i not in flagged for i in range(ts.size)]
    assert ok.tolist() == [True, False, False, False, False, False, True]


def test_a_state_kept_as_rows_is_the_state_it_stands_for() -> None:
    """What ``evaluate_latest`` gives back (rows) answers as the RuleStates it stands for:
    equality both ways, each rule, the written form, a snooze; and each device's rows are
    its own (not a view keeping the whole call's array alive)."""
    rules = default_rules("glucose")
    signals = {
        Signal.GLUCOSE: np.array([50.0, 120.0]),
        Signal.GLUCOSE_RATE: np.array([0.0, 0.5]),
        Signal.GLUCOSE_PRED_20: np.array([50.0, 130.0]),
    }
    got, _ = evaluate_latest([rules, rules], [EvaluatorState(), EvaluatorState()],
                             np.array([T0, T0]), signals, now_s=T0, tzs=[0, 0])  # fmt: skip
    low = got[0]
    assert low._rows is not None and low._rows.states.base is None
    objects = EvaluatorState(dict(low.rules), low.last_reading_s)
    assert low == objects and objects == low and repr(low) == repr(objects)
    assert low != low.to_dict() and low.__eq__(low.to_dict()) is NotImplemented
    assert low.to_dict() == objects.to_dict()
    fresh = EvaluatorState._of_rows(low._rows, low.last_reading_s)  # nothing asked yet
    for kind in RuleKind:
        assert fresh.rule(kind) == objects.rule(kind), kind
    assert fresh._rules is None  # rule() made no RuleState of the other rules
    assert fresh.rule(RuleKind.URGENT_LOW).active and not fresh.rule(RuleKind.HIGH).on
    snoozed = snooze(fresh, RuleKind.LOW, T0 + 600)
    assert snoozed.rule(RuleKind.LOW).snoozed_until_s == T0 + 600
    assert snoozed.rule(RuleKind.URGENT_LOW) == objects.rule(RuleKind.URGENT_LOW)
    # A rule that only saw a value has no episode: the key leaves it out, in both forms.
    normal = got[1]
    assert normal.rule(RuleKind.HIGH).last_value == 120.0
    assert episode_key(normal) == episode_key(EvaluatorState(dict(normal.rules))) == ()
    assert episode_key(low) == episode_key(objects) != ()
