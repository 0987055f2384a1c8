"""Variability and risk metrics against hand-computed values, and their "not enough data"."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.glucose_stats import (
    agp_profile,
    compare_with_previous,
    daily_profiles,
    glucose_report,
    glucose_stats,
)
from algorithms.variability import (
    adrr,
    conga,
    day_grid,
    ea1c_pct,
    gri,
    grid_step_min,
    iqr_mgdl,
    j_index,
    mad_mgdl,
    mage,
    modd,
    risk_indices,
    variability,
)

DAY = 86_400.0
FIVE = 300.0
MONDAY = 1_704_067_200.0  # 2024-01-01 00:00 UTC


def _risk(g: float) -> float:
    """Kovatchev's risk with the unrounded constant 10 x 1.509^2 (iglu uses 22.77)."""
    return 10.0 * (1.509 * (math.log(g) ** 1.084 - 5.381)) ** 2


def _triangle(lo: float, hi: float, half_period_pts: int, n: int) -> np.ndarray:
    """A triangle wave on grid points, starting at ``lo``; peaks and nadirs on grid points."""
    phase = np.arange(n) % (2 * half_period_pts)
    up = np.minimum(phase, 2 * half_period_pts - phase)
    return lo + (hi - lo) * up / half_period_pts


def test_lbgi_hbgi_hand_computed() -> None:
    lbgi, hbgi = risk_indices(np.array([50.0, 400.0]))
    assert lbgi == pytest.approx(_risk(50.0) / 2, rel=1e-4)  # 22.51 / 2
    assert hbgi == pytest.approx(_risk(400.0) / 2, rel=1e-4)
    # 112.5 mg/dL is the centre of the scale: no risk either side.
    assert risk_indices(np.array([112.5])) == pytest.approx((0.0, 0.0), abs=1e-3)


def test_adrr_is_the_mean_over_days_of_daily_high_plus_low_risk() -> None:
    ts = np.array([MONDAY + 3600, MONDAY + 7200, MONDAY + DAY + 3600])
    g = np.array([50.0, 200.0, 300.0])
    # Day 1: LR(50) + HR(200); day 2 (one reading above the centre): HR(300) + 0.
    expected = (_risk(50.0) + _risk(200.0) + _risk(300.0)) / 2
    assert adrr(ts, g) == pytest.approx(expected, rel=1e-4)
    # Days are local: at UTC-2 the readings fall on 31 Dec (50) and 1 Jan (200, 300).
    assert adrr(ts, g, tz=-7200) == pytest.approx((_risk(50.0) + _risk(300.0)) / 2, rel=1e-4)


def test_j_index_ea1c_mad_iqr_hand_computed() -> None:
    assert j_index(100.0, 20.0) == pytest.approx(14.4)  # 0.001 x 120^2
    assert ea1c_pct(140.0) == pytest.approx(186.7 / 28.7)
    # median 3; |g - 3| = 2, 1, 0, 1, 97 -> median 1 -> x 1.4826
    assert mad_mgdl(np.array([1.0, 2, 3, 4, 100])) == pytest.approx(1.4826)
    # R type 7: q25 = 1.75, q75 = 3.25
    assert iqr_mgdl(np.array([4.0, 1, 3, 2])) == pytest.approx(1.5)


def test_metrics_without_readings_are_not_enough_data() -> None:
    empty = np.array([])
    assert all(math.isnan(x) for x in risk_indices(empty))
    assert math.isnan(adrr(empty, empty))
    assert math.isnan(mad_mgdl(empty)) and math.isnan(iqr_mgdl(empty))
    assert math.isnan(mage(empty, empty))
    assert day_grid(np.array([0.0]), np.array([100.0])) is None
    assert math.isnan(conga(None)) and math.isnan(modd(None))
    g = gri(math.nan, math.nan, math.nan, math.nan)
    assert math.isnan(g.gri) and g.zone is None


def test_gri_components_zones_and_cap() -> None:
    # VLow 1 %, Low 2 %, High 10 %, VHigh 3 %: hypo 1 + 1.6 = 2.6, hyper 3 + 5 = 8
    g = gri(1.0, 2.0, 10.0, 3.0)
    assert (g.hypo_component, g.hyper_component) == pytest.approx((2.6, 8.0))
    assert g.gri == pytest.approx(3.0 * 2.6 + 1.6 * 8.0)  # 20.6
    assert g.zone == "B"
    assert gri(0.0, 0.0, 25.0, 0.0).gri == 20.0 and gri(0.0, 0.0, 25.0, 0.0).zone == "A"
    assert gri(0.0, 0.0, 0.0, 50.0).zone == "D"  # exactly 80: zone bounds are inclusive
    assert gri(0.0, 0.0, 0.0, 51.0).zone == "E"
    capped = gri(40.0, 0.0, 0.0, 0.0)  # 3 x 40 = 120
    assert capped.gri == 100.0 and capped.zone == "E"


@pytest.mark.parametrize(
    ("median_s", "step_min"),
    [(300, 5), (60, 1), (297, 5), (420, 5), (660, 10), (1500, 20), (90, 2), (150, 2),
     (900, 15), (10, 1)],
)  # fmt: skip
def test_grid_step_like_iglu(median_s: float, step_min: int) -> None:
    # Rounded to minutes (half to even); a step not dividing a day goes to a multiple of 5,
    # or 20 above 20 minutes; never below one minute.
    assert grid_step_min(median_s) == step_min


def test_day_grid_interpolates_from_midnight_and_not_across_long_gaps() -> None:
    ts = MONDAY + np.array([150.0, 450.0, 750.0, 4500.0])
    g = np.array([100.0, 110.0, 130.0, 190.0])
    grid = day_grid(ts, g)
    assert grid is not None
    # iglu's day count: ceiling(days spanned + 1), so a partial day makes two rows.
    assert grid.values.shape == (2, 288) and grid.dt_s == 300.0 and grid.day0_s == MONDAY
    assert np.isnan(grid.values[1]).all()
    row = grid.values[0]
    assert row[0] == pytest.approx(105.0)  # 00:05, between 00:02:30 and 00:07:30
    assert row[1] == pytest.approx(120.0)  # 00:10
    assert np.isnan(row[2:14]).all()  # inside the 62.5-minute gap: nothing interpolated
    assert row[14] == 190.0  # 01:15:00, exactly on the last reading
    assert np.isnan(row[15:]).all()  # after the last reading
    # Hourly readings: the step (60 min) exceeds the 45-minute interpolation limit.
    assert day_grid(MONDAY + 3600.0 * np.arange(5), np.full(5, 100.0)) is None


def test_day_grid_survives_the_daylight_saving_fall_back() -> None:
    # Europe/Paris, 2024-10-27 01:00 UTC: local 03:00 -> 02:00, local times repeat.
    ts = 1_729_990_800.0 + FIVE * np.arange(-24, 24)
    grid = day_grid(ts, np.full(ts.size, 120.0), tz="Europe/Paris")
    assert grid is not None
    assert np.nanmin(grid.values) == np.nanmax(grid.values) == 120.0


def _two_days(day2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ts = MONDAY + FIVE * np.arange(1, 2 * 288 + 1)
    return ts, np.concatenate((np.full(288, 100.0), day2))


def test_conga24_and_modd_hand_computed() -> None:
    # Day 2 alternates 100 / 120 against a flat day 1: differences alternate 0 / 20.
    ts, g = _two_days(np.where(np.arange(288) % 2 == 0, 100.0, 120.0))
    grid = day_grid(ts, g)
    assert modd(grid) == pytest.approx(10.0)
    n = 288  # pairs 24 h apart: sample SD of +-10 around 10
    assert conga(grid, 24) == pytest.approx(math.sqrt(n * 100.0 / (n - 1)))
    # CONGA(1): one hour apart within the data.
    assert conga(grid, 1) > 0.0
    # More hours than data: not enough data.
    assert math.isnan(conga(grid, 72))


def test_modd_needs_more_than_one_day() -> None:
    ts = MONDAY + FIVE * np.arange(200)
    assert math.isnan(modd(day_grid(ts, np.full(200, 100.0))))


def test_mage_of_a_regular_triangle_wave_is_its_amplitude() -> None:
    # 3-hour rises and falls of 100 mg/dL over two days, ending on a nadir.
    g = _triangle(100.0, 200.0, 36, 2 * 288 + 1)
    ts = MONDAY + FIVE * np.arange(1, g.size + 1)
    assert mage(ts, g) == pytest.approx(100.0)
    # Ending mid-fall: iglu counts the unfinished last fall too (97.2 of the 8 falls).
    g = _triangle(100.0, 200.0, 36, 2 * 288)
    assert mage(ts[:-1], g) == pytest.approx((8 * 100.0 + 7 * 100.0 + 100.0 - 100 / 36) / 16)


def test_mage_weights_segments_split_by_a_long_gap_by_their_duration() -> None:
    a = _triangle(100.0, 200.0, 36, 289)  # 24 h of excursions of 100
    b = _triangle(100.0, 160.0, 36, 145)  # 12 h of excursions of 60
    ts_a = MONDAY + FIVE * np.arange(1, a.size + 1)
    ts_b = ts_a[-1] + 4 * 3600.0 + FIVE * np.arange(b.size)  # after a 4-hour gap
    m = mage(np.concatenate((ts_a, ts_b)), np.concatenate((a, b)))
    span_a, span_b = a.size - 1, b.size - 1
    assert m == pytest.approx((100.0 * span_a + 60.0 * span_b) / (span_a + span_b))


def test_mage_not_enough_data_and_no_excursion() -> None:
    ts = MONDAY + FIVE * np.arange(1, 31)  # 30 grid points < the 160-minute moving average
    assert math.isnan(mage(ts, _triangle(100.0, 200.0, 6, 30)))
    ts = MONDAY + FIVE * np.arange(1, 200)
    assert math.isnan(mage(ts, np.full(ts.size, 120.0)))  # flat: no excursion at all
    # A flat start (moving averages equal) then swings: crossings start at the first swing.
    g = np.concatenate((np.full(60, 100.0), _triangle(100.0, 200.0, 36, 4 * 72 + 1)))
    assert mage(MONDAY + FIVE * np.arange(1, g.size + 1), g) == pytest.approx(100.0)


def test_mage_bridges_short_gaps_inside_a_segment() -> None:
    g = _triangle(100.0, 200.0, 36, 2 * 288 + 1)
    ts = MONDAY + FIVE * np.arange(1, g.size + 1)
    keep = np.ones(g.size, dtype=bool)
    keep[40:52] = False  # an hour missing mid-fall: not interpolated, the trace not split
    assert mage(ts[keep], g[keep]) == pytest.approx(100.0)


def test_variability_in_the_comparison_belongs_to_the_current_window() -> None:
    g = _triangle(100.0, 200.0, 36, 4 * 288)
    ts = MONDAY + FIVE * np.arange(g.size)
    cmp = compare_with_previous(ts, g, start_s=MONDAY + 2 * DAY, end_s=MONDAY + 4 * DAY)
    s = glucose_stats(ts, g, start_s=MONDAY + 2 * DAY, end_s=MONDAY + 4 * DAY)
    direct = variability(
        ts[ts >= MONDAY + 2 * DAY],
        g[ts >= MONDAY + 2 * DAY],
        ranges=(s.ranges.below_54_pct, s.ranges.from_54_below_70_pct,
                s.ranges.above_180_to_250_pct, s.ranges.above_250_pct),
        mean_mgdl=s.mean_mgdl,
        sd_mgdl=s.sd_mgdl,
    )  # fmt: skip
    assert repr(cmp.variability) == repr(direct)
    assert cmp.variability.mage_mgdl > 95.0 and cmp.variability.modd_mgdl == 0.0


def test_agp_quantiles_with_very_uneven_bins_match_numpy() -> None:
    # Nearly every reading in one 1-minute bin: the padded fast path is not used.
    rng = np.random.default_rng(3)
    ts = MONDAY + np.concatenate((np.arange(0, 3000 * DAY, DAY), [120.0, 240.0]))
    g = rng.normal(130, 40, ts.size).round()
    agp = agp_profile(ts, g, bin_min=1)
    np.testing.assert_allclose(agp.values_mgdl[0], np.percentile(g[:-2], [5, 25, 50, 75, 95]))


# --- Properties (hypothesis) ---


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(min_value=20, max_value=600, allow_nan=False), min_size=1))
def test_gri_lies_between_0_and_100(values) -> None:
    s = glucose_stats(np.arange(len(values)) * FIVE, np.array(values))
    r = s.ranges
    g = gri(r.below_54_pct, r.from_54_below_70_pct, r.above_180_to_250_pct, r.above_250_pct)
    assert 0.0 <= g.gri <= 100.0
    assert g.zone in {"A", "B", "C", "D", "E"}


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(min_value=40, max_value=400, allow_nan=False), min_size=288, max_size=288),
    st.integers(min_value=2, max_value=5),
)
def test_modd_is_zero_for_a_repeated_identical_day(day, days) -> None:
    ts = MONDAY + FIVE * np.arange(1, 288 * days + 1)
    g = np.tile(np.array(day), days)
    assert modd(day_grid(ts, g)) == 0.0


def test_glucose_report_equals_its_parts_in_a_daylight_saving_zone() -> None:
    g = _triangle(60.0, 260.0, 30, 6 * 288)
    ts = MONDAY + FIVE * np.arange(g.size)
    win = {"start_s": MONDAY + 3 * DAY, "end_s": MONDAY + 6 * DAY}
    rep = glucose_report(ts, g, **win, tz="Europe/Paris")
    cmp = compare_with_previous(ts, g, **win, tz="Europe/Paris")
    assert repr(rep.comparison) == repr(cmp)
    cur = (ts >= win["start_s"]) & (ts < win["end_s"])
    agp = agp_profile(ts[cur], g[cur], tz="Europe/Paris")
    np.testing.assert_array_equal(rep.agp.values_mgdl, agp.values_mgdl)
    assert rep.daily == daily_profiles(ts[cur], g[cur], tz="Europe/Paris")
    with pytest.raises(ValueError, match="divide a day"):
        glucose_report(ts, g, **win, bin_min=7)


def test_agp_and_daily_of_no_readings() -> None:
    agp = agp_profile(np.array([]), np.array([]))
    assert agp.readings.sum() == 0 and np.isnan(agp.values_mgdl).all()
    assert daily_profiles(np.array([]), np.array([])) == []
    with pytest.raises(ValueError, match="divide a day"):
        agp_profile(np.array([]), np.array([]), bin_min=7)


def test_repeated_instant_uses_the_lowest_reading_on_the_grid_too() -> None:
    # Deliberate difference: iglu's CGMS2DayByDay keeps the last of repeated readings; Vigil
    # keeps the lowest everywhere (clean_series), so the grid agrees with every other metric.
    ts = MONDAY + np.array([300.0, 600.0, 600.0, 900.0])
    grid = day_grid(ts, np.array([100.0, 60.0, 140.0, 100.0]))
    assert grid is not None and grid.values[0, 1] == 60.0  # 00:10, the repeated instant
