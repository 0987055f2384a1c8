"""The guards and edge paths of the algorithms that the scenario tests do not reach: bad
arguments refused by name, empty and out-of-order input, NaN readings. One case per row, so
one failure does not hide the others (the algorithms/ coverage floor is 100 %)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from algorithms.calibration import fit_calibration
from algorithms.evaluator import AlertEvent, EvaluatorState, EventType, tick
from algorithms.glucose_stream import GlucoseStreamParams, process_glucose
from algorithms.localtime import utc_offsets_s
from algorithms.rules import QuietPeriod, Rule, RuleKind, Severity, default_rules, with_mandatory
from algorithms.sensors import spec_for
from algorithms.series import clean_series
from algorithms.smoothing import exponential_smooth, kalman_glucose
from algorithms.temperature import TemperatureState, process_temperature
from algorithms.validation import EARLIEST_TS_S, MAX_FUTURE_S, Problem, validate_readings

NOW = 1_772_000_000.0  # 2026-02-25, seconds since the epoch


@pytest.mark.parametrize(
    ("call", "message"),
    [
        pytest.param(lambda: fit_calibration([], []), "non-empty", id="calibration-empty"),
        pytest.param(
            lambda: fit_calibration([100, 120], [101]), "matching", id="calibration-unpaired"
        ),
        pytest.param(lambda: clean_series([1, 2], [3]), "differ in length", id="series-lengths"),
        pytest.param(lambda: QuietPeriod(1440, 60), "within a day", id="quiet-start-past-day"),
        pytest.param(lambda: QuietPeriod(60, 1441), "within a day", id="quiet-end-past-day"),
        pytest.param(lambda: QuietPeriod(60, 120, (7,)), "0 \\(Monday\\)", id="quiet-weekday"),
        pytest.param(
            lambda: Rule(RuleKind.HIGH, realert_s=0), "must be >= 0", id="rule-realert-zero"
        ),
        pytest.param(
            lambda: Rule(RuleKind.HIGH, hysteresis=-1), "must be >= 0", id="rule-hysteresis"
        ),
    ],
)
def test_bad_arguments_are_refused_by_name(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_clean_series_drops_non_finite_readings() -> None:
    ts, v = clean_series([0, 60, 120, math.nan], [100, math.nan, 110, 120])
    np.testing.assert_array_equal(ts, [0, 120])
    np.testing.assert_array_equal(v, [100, 110])


def test_utc_offsets_of_no_timestamps_are_empty() -> None:
    assert utc_offsets_s(np.array([]), "Europe/Paris").shape == (0,)


VALIDATION = [
    pytest.param([NOW], [100.0], [], id="acceptable"),
    pytest.param([NOW], [math.nan], [(0, "value")], id="nan-value"),
    pytest.param([NOW, NOW], [100.0, 9999.0], [(1, "value")], id="above-range"),
    pytest.param([EARLIEST_TS_S - 1], [100.0], [(0, "ts")], id="before-2000"),
    pytest.param([NOW + MAX_FUTURE_S + 1], [100.0], [(0, "ts")], id="too-far-ahead"),
    pytest.param([NOW + MAX_FUTURE_S], [100.0], [], id="just-within-the-future-limit"),
    pytest.param(
        [EARLIEST_TS_S - 1, NOW], [1.0, 1.0], [(0, "ts"), (0, "value"), (1, "value")], id="sorted"
    ),
]


@pytest.mark.parametrize(("ts", "values", "expected"), VALIDATION)
def test_validate_readings_names_each_problem(ts, values, expected) -> None:
    problems = validate_readings(np.array(ts), np.array(values), spec_for("glucose"), NOW)
    assert [(p.index, p.field) for p in problems] == expected
    assert all(isinstance(p, Problem) and p.message for p in problems)


def test_value_problem_names_the_sensor_range() -> None:
    (problem,) = validate_readings(np.array([NOW]), np.array([9999.0]), spec_for("glucose"), NOW)
    spec = spec_for("glucose")
    assert f"{spec.min_value:g}-{spec.max_value:g} {spec.unit}" in problem.message


def test_kalman_gives_readings_before_the_state_the_state_values() -> None:
    first = kalman_glucose(np.array([0.0, 300.0, 600.0]), np.array([100.0, 102.0, 104.0]))
    assert first.state is not None
    again = kalman_glucose(np.array([300.0]), np.array([150.0]), first.state)
    assert again.level_mgdl[0] == first.state.level_mgdl


def test_exponential_smoothing_keeps_a_repeated_timestamp_at_the_smoothed_value() -> None:
    smoothed, last = exponential_smooth(
        np.array([0.0, 0.0, 60.0]), np.array([36.0, 38.0, 37.0]), 300
    )
    assert smoothed[0] == smoothed[1] == 36.0  # no time passed: nothing learnt
    assert 36.0 < smoothed[2] < 37.0 and last == (60.0, smoothed[2])


def test_a_nan_skin_reading_keeps_the_patch_state() -> None:
    stream, _ = process_temperature(
        np.array([0.0, 60.0, 120.0]), np.array([34.0, math.nan, 34.1]), TemperatureState()
    )
    assert not stream.patch_off.any()
    assert math.isnan(stream.core_c[1])


def test_glucose_stream_without_compression_detection_marks_readings_usable() -> None:
    ts = np.arange(0.0, 3600.0, 300.0)
    stream, _ = process_glucose(
        ts, np.full(ts.size, 110.0), params=GlucoseStreamParams(detect_compression=False)
    )
    assert stream.usable().all()


def test_signal_loss_waits_for_a_first_reading() -> None:
    state, events = tick(default_rules("glucose"), EvaluatorState(), now_s=NOW)
    assert events == [] and not state.rule(RuleKind.SIGNAL_LOSS).active


def test_alert_events_serialise_with_their_enum_names() -> None:
    event = AlertEvent(RuleKind.LOW, EventType.FIRED, Severity.WARNING, NOW, 65.0, 70.0)
    assert event.to_dict() == {
        "rule": "low",
        "type": "fired",
        "severity": "warning",
        "ts_s": NOW,
        "value": 65.0,
        "threshold": 70.0,
    }


@pytest.mark.parametrize("sensor", ["glucose", "temperature"])
def test_with_mandatory_adds_nothing_already_there(sensor: str) -> None:
    rules = default_rules(sensor)
    assert with_mandatory(rules, sensor) == rules
