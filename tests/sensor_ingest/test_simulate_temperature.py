"""The virtual temperature patch: day rhythm, fever episodes, reproducibility."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sensor_ingest.simulate import TemperaturePersona, VirtualTemperaturePatch, make_fleet
from sensor_ingest.simulate.timegrid import DAY_S, HOUR_S, day_start

T0 = day_start(20_000, 0)
FLEET = [p for p in make_fleet(8, "temperature", seed=3) if isinstance(p, TemperaturePersona)]


@pytest.mark.parametrize("persona", FLEET, ids=lambda p: p.name)
def test_readings_within_physical_range(persona: TemperaturePersona) -> None:
    sensor = VirtualTemperaturePatch(persona)
    ts = sensor.grid.times_between(T0, T0 + 7 * DAY_S)
    assert ts.size == 7 * 1440
    values = sensor.values_at(ts)
    reported = values[np.isfinite(values)]
    assert reported.min() >= 25.0 and reported.max() <= 45.0
    assert 0.9 <= reported.size / values.size < 1.0


def test_diurnal_minimum_early_morning_maximum_late_afternoon() -> None:
    persona = TemperaturePersona("well", seed=4, fever_prob=0.0, diurnal_amplitude_c=0.4)
    sensor = VirtualTemperaturePatch(persona)
    ts = sensor.grid.times_between(T0, T0 + 14 * DAY_S)
    values = sensor.values_at(ts)
    hour = ((ts - T0) % DAY_S // HOUR_S).astype(int)
    by_hour = np.array([np.nanmean(values[hour == h]) for h in range(24)])
    assert int(np.argmin(by_hour)) in range(2, 7)
    assert int(np.argmax(by_hour)) in range(14, 19)
    assert 0.6 <= by_hour.max() - by_hour.min() <= 1.0
    assert abs(np.nanmean(values) - 36.8) < 0.1
    assert np.nanmax(values) < 37.8


def test_fever_episodes_exceed_38_and_subside() -> None:
    persona = TemperaturePersona("sick", seed=8, fever_prob=0.4)
    sensor = VirtualTemperaturePatch(persona)
    episodes = sensor.fevers_between(T0, T0 + 14 * DAY_S)
    assert len(episodes) >= 2
    for episode in episodes:
        assert 38.5 <= episode.peak_c <= 40.0
        assert HOUR_S <= episode.rise_s <= 2 * HOUR_S
        assert episode.plateau_s >= 3 * HOUR_S
        plateau = np.arange(episode.plateau_start_ts, episode.plateau_end_ts, 60.0)
        core = sensor.core_at(plateau)
        assert core.max() >= episode.peak_c - 0.01
        assert core.min() > 38.0
        reported = sensor.values_at(plateau)
        assert np.nanmedian(reported) > 38.0
        before = sensor.core_at(np.array([episode.onset_ts - 1.0]))[0]
        assert before < 37.6 or any(
            other.onset_ts < episode.onset_ts < other.end_ts for other in episodes
        )
    last = episodes[-1]
    after = sensor.core_at(np.array([last.end_ts + 60.0]))[0]
    assert after < 37.6 or last.end_ts > T0 + 14 * DAY_S - DAY_S


def test_same_seed_same_readings_other_seed_other_readings() -> None:
    ts = np.arange(T0, T0 + DAY_S, 60.0)
    a = VirtualTemperaturePatch(TemperaturePersona("a", seed=1)).values_at(ts)
    again = VirtualTemperaturePatch(TemperaturePersona("a", seed=1)).values_at(ts)
    other = VirtualTemperaturePatch(TemperaturePersona("a", seed=2)).values_at(ts)
    np.testing.assert_array_equal(a, again)
    both = np.isfinite(a) & np.isfinite(other)
    assert np.mean(np.abs(a[both] - other[both]) > 0.01) > 0.5


@settings(max_examples=25, deadline=None)
@given(split=st.integers(min_value=1, max_value=2 * 1440 - 1), index=st.integers(0, 7))
def test_values_do_not_depend_on_how_the_range_is_split(split: int, index: int) -> None:
    sensor = VirtualTemperaturePatch(FLEET[index])
    ts = sensor.grid.times_between(T0 + 5 * HOUR_S, T0 + 2 * DAY_S + 5 * HOUR_S)
    whole = sensor.values_at(ts)
    parts = np.concatenate([sensor.values_at(ts[:split]), sensor.values_at(ts[split:])])
    np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-9, equal_nan=True)


def test_skin_offset_lowers_the_reading() -> None:
    ts = np.arange(T0, T0 + 6 * HOUR_S, 60.0)
    core = TemperaturePersona("core", seed=5, dropout_prob=0.0, missed_reading_prob=0.0)
    skin = TemperaturePersona(
        "skin", seed=5, dropout_prob=0.0, missed_reading_prob=0.0, skin_offset_c=2.5
    )
    diff = VirtualTemperaturePatch(core).values_at(ts) - VirtualTemperaturePatch(skin).values_at(ts)
    np.testing.assert_allclose(diff, 2.5, atol=1e-9)
