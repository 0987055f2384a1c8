"""Temperature pipeline and statistics: core offset, fever, hypothermia, patch-off."""

from __future__ import annotations

import numpy as np
import pytest

from algorithms.temperature import (
    BodySite,
    TemperatureParams,
    TemperatureState,
    core_offset_c,
    process_temperature,
)
from algorithms.temperature_stats import temperature_stats

MIN = 60.0


def test_core_offset_per_body_site_and_override() -> None:
    assert core_offset_c(BodySite.AXILLA) == 0.5
    assert core_offset_c("chest") == 1.5
    assert core_offset_c("chest", {"chest": 1.2}) == 1.2


def test_core_estimate_adds_the_site_offset() -> None:
    ts = np.arange(60) * MIN
    s, _ = process_temperature(ts, np.full(60, 36.0), params=TemperatureParams(offset_c=1.5))
    assert s.core_c[-1] == pytest.approx(37.5)


def test_fever_needs_to_be_sustained() -> None:
    ts = np.arange(120) * MIN
    skin = np.where(ts >= 30 * MIN, 38.0, 36.5)  # core 38.5 from minute 30
    p = TemperatureParams(offset_c=0.5, fever_min_s=20 * MIN, smooth_tau_s=60)
    s, _ = process_temperature(ts, skin, params=p)
    first = int(np.flatnonzero(s.fever)[0])
    assert 50 <= first <= 53  # 20 minutes after the smoothed core reached 38.0
    assert not s.high_fever.any() and not s.hypothermia.any()


def test_high_fever_and_rapid_rise() -> None:
    ts = np.arange(180) * MIN
    skin = np.minimum(36.5 + 0.05 * np.arange(180), 39.6)  # 3 C per hour
    s, _ = process_temperature(ts, skin, params=TemperatureParams(offset_c=0.5))
    assert s.rapid_rise[40] and s.high_fever[-1] and not s.rapid_rise[-1]


def test_slow_cooling_is_hypothermia() -> None:
    ts = np.arange(300) * MIN
    skin = 36.0 - 0.01 * np.arange(300)  # 0.6 C per hour down to 33.0
    s, _ = process_temperature(ts, skin, params=TemperatureParams(offset_c=0.5))
    assert s.hypothermia[-1] and not s.patch_off.any()


def test_patch_off_is_a_sensor_problem_not_hypothermia() -> None:
    ts = np.arange(240) * MIN
    skin = np.full(240, 36.3)
    skin[60:180] = 22.0 + 14.3 * np.exp(-np.arange(120) / 3.0)  # cools to a 22 C room
    s, _ = process_temperature(ts, skin, params=TemperatureParams(offset_c=0.5))
    assert s.patch_off[62:180].all() and not s.patch_off[:60].any() and not s.patch_off[185:].any()
    assert np.isnan(s.core_c[62:180]).all()
    assert not s.hypothermia.any()


def test_patch_off_near_ambient_when_ambient_is_known() -> None:
    ts = np.arange(30) * MIN
    s, _ = process_temperature(ts, np.full(30, 24.0), ambient_c=23.0)
    assert s.patch_off.all()


def test_batches_continue_from_serialised_state() -> None:
    ts = np.arange(200) * MIN
    skin = 36.5 + 1.8 * (ts > 50 * MIN) + np.random.default_rng(1).normal(0, 0.05, 200)
    whole, _ = process_temperature(ts, skin)
    a, st = process_temperature(ts[:77], skin[:77])
    st = TemperatureState.from_dict(st.to_dict())
    b, _ = process_temperature(ts[77:], skin[77:], st)
    np.testing.assert_allclose(np.concatenate((a.core_c, b.core_c)), whole.core_c)
    assert np.concatenate((a.fever, b.fever)).tolist() == whole.fever.tolist()
    np.testing.assert_allclose(
        np.concatenate((a.rate_c_per_min, b.rate_c_per_min)), whole.rate_c_per_min, atol=1e-9
    )


def test_temperature_stats_hand_computed() -> None:
    # 10 readings at 1 minute: 36, 37, then 8 at 38.5 -> mean 38.1, 80 % in fever.
    core = np.array([36.0, 37.0] + [38.5] * 8)
    st = temperature_stats(np.arange(10) * MIN, core, start_s=0, end_s=600, interval_s=MIN)
    assert (st.min_c, st.max_c) == (36.0, 38.5)
    assert st.mean_c == pytest.approx(38.1)
    assert st.time_in_fever_pct == 80.0 and st.time_in_fever_s == 480.0
    assert st.data_sufficiency_pct == 100.0
    assert st.fever_episodes == ()  # 8 minutes is shorter than the 30-minute episode minimum


def test_temperature_fever_episode_reports_peak_and_duration() -> None:
    core = np.concatenate((np.full(10, 37.0), np.full(40, 38.6), [39.1], np.full(40, 37.0)))
    st = temperature_stats(np.arange(core.size) * MIN, core, interval_s=MIN)
    assert len(st.fever_episodes) == 1
    ep = st.fever_episodes[0]
    assert ep.duration_s == 41 * MIN and ep.extreme_value == 39.1
