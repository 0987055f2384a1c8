"""The virtual CGM: plausible glucose days, reproducible as a function of absolute time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor_ingest.simulate import GlucosePersona, VirtualCGM, make_fleet, sensor_for
from sensor_ingest.simulate.cgm import CGM_MAX_MGDL, CGM_MIN_MGDL
from sensor_ingest.simulate.timegrid import DAY_S, HOUR_S, day_start

T0 = day_start(20_000, 0)  # a local midnight (2024-10-04 UTC)
WEEK = 7 * DAY_S
FLEET = [p for p in make_fleet(12, "glucose", seed=7) if isinstance(p, GlucosePersona)]


def week_of(sensor: VirtualCGM) -> tuple[np.ndarray, np.ndarray]:
    ts = sensor.grid.times_between(T0, T0 + WEEK)
    return ts, sensor.values_at(ts)


@pytest.mark.parametrize("persona", FLEET, ids=lambda p: p.name)
def test_week_is_within_sensor_range_and_plausible(persona: GlucosePersona) -> None:
    sensor = VirtualCGM(persona)
    ts, values = week_of(sensor)
    assert ts.size == WEEK // 300
    assert np.all(np.diff(ts) == 300)
    reported = values[np.isfinite(values)]
    assert reported.min() >= CGM_MIN_MGDL
    assert reported.max() <= CGM_MAX_MGDL
    assert 100 <= reported.mean() <= 180
    assert 0.9 <= reported.size / values.size < 1.0  # a few dropouts, mostly present


def test_meals_raise_glucose_to_a_peak_about_an_hour_later() -> None:
    sensor = VirtualCGM(GlucosePersona("meals", seed=3, exercise_prob=0.0, snack_prob=0.0))
    meals = [e for e in sensor.events_between(T0, T0 + WEEK) if e.kind == "meal"]
    assert 15 <= len(meals) <= 21
    rises, peak_minutes = [], []
    for meal in meals:
        ts = meal.start_ts + np.arange(0, 150 * 60 + 1, 300.0)
        level = sensor.level_at(ts)
        rises.append(level.max() - level[0])
        peak_minutes.append((ts[np.argmax(level)] - meal.start_ts) / 60)
        # decayed within three hours of the peak
        after = sensor.level_at(np.array([meal.start_ts + meal.peak_s + 3 * HOUR_S]))
        assert after[0] - level[0] < 0.4 * meal.amplitude_mgdl + 20
    assert np.median(rises) >= 35
    assert 40 <= np.median(peak_minutes) <= 80
    assert all(40 <= e.amplitude_mgdl <= 90 for e in meals)


def test_exercise_dips_and_nocturnal_lows() -> None:
    persona = GlucosePersona(
        "lows", seed=11, meal_hours=(), snack_prob=0.0, exercise_prob=1.0, nocturnal_low_prob=1.0
    )
    sensor = VirtualCGM(persona)
    events = sensor.events_between(T0, T0 + WEEK)
    for event in events:
        ts = event.start_ts + np.arange(0, 4 * HOUR_S, 300.0)
        level = sensor.level_at(ts)
        assert level.min() < level[0] - 10
    lows = [e for e in events if e.kind == "nocturnal_low"]
    assert len(lows) == 7
    for low in lows:
        hour = (low.start_ts - T0) % DAY_S / HOUR_S
        assert 1.0 <= hour <= 3.5
        ts = low.start_ts + np.arange(0, 3 * HOUR_S, 300.0)
        assert np.nanmin(sensor.values_at(ts)) < 70


def test_dawn_phenomenon_raises_early_morning_glucose() -> None:
    persona = GlucosePersona(
        "dawn", seed=5, meal_hours=(), snack_prob=0.0, exercise_prob=0.0, dawn_rise_mgdl=25.0
    )
    sensor = VirtualCGM(persona)
    for day in range(7):
        midnight = T0 + day * DAY_S
        night, dawn = sensor.level_at(np.array([midnight + 3 * HOUR_S, midnight + 6.5 * HOUR_S]))
        assert dawn - night > 10


def test_same_seed_same_curve_other_seed_other_curve() -> None:
    ts = np.arange(T0, T0 + 2 * DAY_S, 300.0)
    a = VirtualCGM(GlucosePersona("a", seed=1)).values_at(ts)
    again = VirtualCGM(GlucosePersona("a", seed=1)).values_at(ts)
    other = VirtualCGM(GlucosePersona("a", seed=2)).values_at(ts)
    np.testing.assert_array_equal(a, again)
    both = np.isfinite(a) & np.isfinite(other)
    assert np.mean(np.abs(a[both] - other[both]) > 1) > 0.5


@settings(max_examples=30, deadline=None)
@given(split=st.integers(min_value=1, max_value=3 * 288 - 1), index=st.integers(0, 11))
def test_values_do_not_depend_on_how_the_range_is_split(split: int, index: int) -> None:
    sensor = sensor_for(FLEET[index])
    ts = sensor.grid.times_between(T0 - DAY_S / 3, T0 + 3 * DAY_S - DAY_S / 3)
    whole = sensor.values_at(ts)
    parts = np.concatenate([sensor.values_at(ts[:split]), sensor.values_at(ts[split:])])
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-9, equal_nan=True)
    single = np.array([sensor.values_at(ts[i : i + 1])[0] for i in range(0, ts.size, 37)])
    np.testing.assert_allclose(single, whole[::37], rtol=0, atol=1e-9, equal_nan=True)


def test_restart_continues_the_same_readings() -> None:
    sensor = VirtualCGM(FLEET[2])
    start, cut, end = T0 + 1234.5, T0 + 5 * HOUR_S + 17, T0 + 9 * HOUR_S
    ts1, v1 = sensor.readings_between(start, cut)
    ts2, v2 = VirtualCGM(FLEET[2]).readings_between(cut, end)
    ts, v = sensor.readings_between(start, end)
    np.testing.assert_array_equal(np.concatenate([ts1, ts2]), ts)
    np.testing.assert_allclose(np.concatenate([v1, v2]), v, atol=1e-9)
    assert np.all(np.isfinite(v))


def test_noise_is_autocorrelated_and_a_few_mgdl() -> None:
    persona = GlucosePersona("noise", seed=9, dropout_prob=0.0, missed_reading_prob=0.0)
    sensor = VirtualCGM(persona)
    ts = np.arange(T0, T0 + WEEK, 300.0)
    error = sensor.values_at(ts) - sensor.level_at(ts)
    assert 2.0 <= error.std() <= 5.0
    lag1 = np.corrcoef(error[:-1], error[1:])[0, 1]
    assert lag1 > 0.5
