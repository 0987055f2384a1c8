"""Glucose statistics against hand-computed values and the iglu R package's definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest

from algorithms.glucose_stats import (
    agp_profile,
    compare_with_previous,
    daily_profiles,
    glucose_stats,
    gmi_percent,
    range_percents,
)

FIVE_MIN = 300.0
# Eight readings five minutes apart: one in each band, two on band edges.
TRACE = np.array([50, 60, 70, 100, 180, 181, 250, 260], dtype=float)
TS = np.arange(TRACE.size) * FIVE_MIN


def test_mean_sd_cv_gmi_hand_computed() -> None:
    s = glucose_stats(TS, TRACE, start_s=0, end_s=TRACE.size * FIVE_MIN)
    assert s.readings == 8
    assert s.mean_mgdl == pytest.approx(1151 / 8)  # 143.875
    # sum of squared deviations 50660.875 / (n - 1) = 7237.27 -> 85.0721
    assert s.sd_mgdl == pytest.approx(85.07213, abs=1e-4)
    assert s.cv_pct == pytest.approx(59.12920, abs=1e-4)
    assert s.gmi_pct == pytest.approx(6.75149, abs=1e-5)
    assert (s.min_mgdl, s.max_mgdl) == (50.0, 260.0)


def test_cv_uses_sample_sd_like_iglu() -> None:
    # iglu::cv_glu = sd(gl) / mean(gl) * 100 with R's sd (n - 1 denominator).
    g = np.array([100.0, 200.0])
    s = glucose_stats(np.array([0.0, FIVE_MIN]), g)
    assert s.sd_mgdl == pytest.approx(math.sqrt(5000.0))  # population SD would be 50
    assert s.cv_pct == pytest.approx(100 * math.sqrt(5000.0) / 150.0)


def test_gmi_formula_like_iglu() -> None:
    # iglu::gmi = 3.31 + 0.02392 * mean(gl)
    assert gmi_percent(154.0) == pytest.approx(3.31 + 0.02392 * 154.0)
    assert gmi_percent(100.0) == pytest.approx(5.702)


def test_range_bounds_inclusive_like_iglu_in_range_percent() -> None:
    # iglu::in_range_percent uses gl >= 70 & gl <= 180; below_percent gl < 70; above gl > 180.
    r = range_percents(np.array([70.0, 180.0, 69.9, 180.1]))
    assert r.in_70_180_pct == 50.0
    assert r.below_70_pct == 25.0
    assert r.above_180_pct == 25.0
    r = range_percents(np.array([54.0, 53.9, 250.0, 250.1, 140.0, 140.1]))
    assert r.below_54_pct == pytest.approx(100 / 6)  # 53.9 only: 54 is not below 54
    assert r.above_250_pct == pytest.approx(100 / 6)  # 250.1 only
    assert r.in_70_140_pct == pytest.approx(100 / 6)  # 140 inclusive, 140.1 not


def test_time_in_ranges_hand_computed_bands_sum_to_100() -> None:
    r = range_percents(TRACE)
    assert r.below_54_pct == 12.5
    assert r.from_54_below_70_pct == 12.5
    assert r.in_70_180_pct == 37.5
    assert r.above_180_to_250_pct == 25.0
    assert r.above_250_pct == 12.5
    assert r.below_70_pct == 25.0
    assert r.above_180_pct == 37.5
    assert r.in_70_140_pct == 25.0
    total = (
        r.below_54_pct
        + r.from_54_below_70_pct
        + r.in_70_180_pct
        + r.above_180_to_250_pct
        + r.above_250_pct
    )
    assert total == 100.0


def test_data_sufficiency_counts_expected_readings_of_the_window() -> None:
    # One day at 5-minute interval expects 288 readings; 216 present -> 75 %.
    ts = np.arange(216) * FIVE_MIN
    s = glucose_stats(ts, np.full(216, 120.0), start_s=0, end_s=86_400, interval_s=FIVE_MIN)
    assert s.expected_readings == 288
    assert s.data_sufficiency_pct == 75.0


def test_window_is_half_open_and_duplicates_count_once() -> None:
    ts = np.array([0.0, 300.0, 300.0, 600.0, 900.0])
    g = np.array([100.0, 110.0, 110.0, 120.0, 500.0])
    s = glucose_stats(ts, g, start_s=0, end_s=900)
    assert s.readings == 3
    assert s.mean_mgdl == 110.0


def test_conflicting_duplicates_keep_the_lowest_value() -> None:
    s = glucose_stats(np.array([0.0, 0.0, 300.0]), np.array([80.0, 60.0, 100.0]))
    assert s.readings == 2
    assert s.min_mgdl == 60.0


def test_empty_window_gives_nan_not_error() -> None:
    s = glucose_stats(np.array([]), np.array([]), start_s=0, end_s=3600)
    assert s.readings == 0
    assert math.isnan(s.mean_mgdl) and math.isnan(s.ranges.in_70_180_pct)
    assert s.data_sufficiency_pct == 0.0


def test_hypo_episodes_in_stats_follow_consensus() -> None:
    # 20 min below 54 (4 readings) then back above: one level-2 and one level-1 episode.
    g = np.array([100, 90, 50, 48, 45, 50, 80, 90, 100, 110, 120], dtype=float)
    ts = np.arange(g.size) * FIVE_MIN
    s = glucose_stats(ts, g)
    assert len(s.hypo_episodes_below_54) == 1
    ep = s.hypo_episodes_below_54[0]
    assert (ep.start_s, ep.end_s, ep.duration_s) == (600.0, 1800.0, 1200.0)
    assert ep.extreme_value == 45.0
    assert len(s.hypo_episodes_below_70) == 1
    assert s.hyper_episodes_above_180 == ()


def test_agp_percentiles_are_r_type7_quantiles_per_bin() -> None:
    # Same local hour on four days: quantile(c(60, 100, 140, 300), 0.25, type = 7) = 90.
    day = 86_400.0
    ts = np.array([0, day, 2 * day, 3 * day]) + 3 * 3600.0
    g = np.array([140.0, 60.0, 300.0, 100.0])
    agp = agp_profile(ts, g, bin_min=60)
    row = agp.values_mgdl[3]
    assert agp.readings[3] == 4
    assert row.tolist() == pytest.approx([66.0, 90.0, 120.0, 180.0, 276.0])
    assert np.isnan(agp.values_mgdl[4]).all()
    np.testing.assert_allclose(row, np.percentile(g, [5, 25, 50, 75, 95]))


def test_agp_bins_use_local_time_offset() -> None:
    # 23:30 UTC is 01:30 at UTC+2: the reading lands in the 01:00 bin.
    agp = agp_profile(np.array([23.5 * 3600]), np.array([100.0]), tz=7200, bin_min=60)
    assert agp.readings[1] == 1 and agp.readings.sum() == 1


def test_daily_profiles_split_at_local_midnight() -> None:
    ts = np.array([22 * 3600.0, 23 * 3600.0])  # 23:00 and 00:00 at UTC+1
    profiles = daily_profiles(ts, np.array([60.0, 200.0]), tz=3600)
    assert [p.readings for p in profiles] == [1, 1]
    assert profiles[0].below_70_pct == 100.0 and profiles[1].above_180_pct == 100.0
    assert profiles[1].local_day_start_s == 23 * 3600.0


def test_daily_profiles_honour_daylight_saving_zone() -> None:
    # Europe/Paris: 2024-03-31 01:00 UTC switches from +1 to +2.
    d = 1_711_843_200.0  # 2024-03-31 00:00 UTC
    ts = np.array([d - 3600 * 2, d + 22.5 * 3600])  # 23:00 local on 30th; 00:30 local on 1st
    profiles = daily_profiles(ts, np.array([100.0, 100.0]), tz="Europe/Paris")
    assert len(profiles) == 2
    assert profiles[1].local_day_start_s == d + 22 * 3600  # midnight CEST = 22:00 UTC


def test_compare_with_previous_window_of_same_length() -> None:
    day = 86_400.0
    ts = np.arange(0, 2 * day, FIVE_MIN)
    g = np.where(ts < day, 100.0, 160.0)
    cmp = compare_with_previous(ts, g, start_s=day, end_s=2 * day)
    assert cmp.previous.mean_mgdl == 100.0 and cmp.current.mean_mgdl == 160.0
    assert cmp.change["mean_mgdl"] == 60.0
    assert cmp.change["gmi_pct"] == pytest.approx(0.02392 * 60)
    assert cmp.change["in_70_180_pct"] == 0.0
    assert cmp.previous.start_s == 0.0 and cmp.previous.end_s == day


def test_daily_profiles_when_a_zone_falls_back_across_midnight() -> None:
    # America/Santiago, 2024-04-07 03:00 UTC: local midnight falls back to 23:00 on the 6th.
    ts = 1_712_458_800.0 + np.arange(-24, 24) * FIVE_MIN
    profiles = daily_profiles(ts, np.full(ts.size, 100.0), tz="America/Santiago")
    assert [p.readings for p in profiles] == [36, 12]  # one run per day, none counted twice
    assert sum(p.readings for p in profiles) == ts.size
