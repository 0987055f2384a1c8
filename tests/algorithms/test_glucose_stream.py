"""Glucose pipeline: smoothing, fast falls, outliers, gaps, prediction, flags, calibration."""

from __future__ import annotations

import numpy as np
import pytest

from algorithms.calibration import Calibration, fit_calibration
from algorithms.glucose_flags import GlucoseFlag, compression_lows
from algorithms.glucose_stream import (
    GlucoseStreamParams,
    process_glucose,
    state_from_dict,
    state_to_dict,
)
from algorithms.prediction import ar2_forecast, damped_gain
from algorithms.sensors import SPECS, DirectionThresholds, SensorKind
from algorithms.smoothing import kalman_glucose
from algorithms.trend import Direction, direction, directions

FIVE = 300.0
RNG = np.random.default_rng(7)


def _first_at_or_below(ts: np.ndarray, g: np.ndarray, level: float) -> float:
    return float(ts[np.flatnonzero(g <= level)[0]])


def test_smoothing_reduces_noise_on_a_flat_trace() -> None:
    ts = np.arange(288) * FIVE
    noisy = 120.0 + RNG.normal(0, 8, ts.size)
    r, _ = process_glucose(ts, noisy)
    assert np.std(r.smoothed_mgdl[20:] - 120.0) < 0.6 * np.std(noisy[20:] - 120.0)


@pytest.mark.parametrize("interval", [60.0, 300.0])
@pytest.mark.parametrize("rate", [2.0, 4.0])
def test_fast_fall_is_never_delayed(interval: float, rate: float) -> None:
    # Flat at 160, then falling at `rate` mg/dL/min: the alert value crosses 70 and 55 no
    # later than the raw readings do, and never sits above them during the fall.
    ts = np.arange(0, 4 * 3600, interval)
    g = np.where(ts < 3600, 160.0, np.maximum(160.0 - rate * (ts - 3600) / 60.0, 40.0))
    r, _ = process_glucose(ts, g)
    for level in (70.0, 55.0):
        assert _first_at_or_below(ts, r.alert_mgdl, level) <= _first_at_or_below(ts, g, level)
    assert np.all(r.alert_mgdl <= g + 1e-9)


def test_fall_tracked_rate_and_double_down_arrow() -> None:
    ts = np.arange(0, 3600 + 1, FIVE)
    g = 300.0 - 3.5 * ts / 60.0
    r, _ = process_glucose(ts, g)
    assert r.rate_mgdl_per_min[-1] == pytest.approx(-3.5, abs=0.05)
    assert r.direction[-1] is Direction.DOUBLE_DOWN
    assert r.direction[0] is Direction.NOT_COMPUTABLE


def test_single_upward_spike_is_rejected_and_flagged() -> None:
    ts = np.arange(40) * FIVE
    g = np.full(40, 110.0)
    g[20] = 200.0
    r, _ = process_glucose(ts, g)
    assert r.flags[20] & GlucoseFlag.IMPLAUSIBLE_JUMP
    assert r.smoothed_mgdl[20] == pytest.approx(110.0, abs=1)
    assert np.isnan(r.alert_mgdl[20])  # cannot raise a high alert
    assert r.flags[21] == 0


def test_confirmed_level_shift_is_accepted_after_one_reading() -> None:
    ts = np.arange(40) * FIVE
    g = np.where(np.arange(40) < 20, 110.0, 200.0)
    r, _ = process_glucose(ts, g)
    assert r.smoothed_mgdl[21] == pytest.approx(200.0)


def test_gap_restarts_the_filter_and_rate_is_unknown() -> None:
    ts = np.concatenate((np.arange(12) * FIVE, 12 * FIVE + 3600 + np.arange(12) * FIVE))
    g = np.concatenate((np.linspace(100, 150, 12), np.full(12, 80.0)))
    k = kalman_glucose(ts, g)
    assert k.restarted[12] and not k.restarted[13]
    assert k.level_mgdl[12] == 80.0
    assert np.isnan(k.rate_mgdl_per_min[12])


def test_batches_continue_from_state_like_one_batch() -> None:
    ts = np.arange(100) * FIVE
    g = 140 + 40 * np.sin(ts / 5000) + RNG.normal(0, 5, ts.size)
    whole, _ = process_glucose(ts, g)
    a, st = process_glucose(ts[:37], g[:37])
    st = state_from_dict(state_to_dict(st))  # survives the database round trip
    b, _ = process_glucose(ts[37:], g[37:], st)
    np.testing.assert_allclose(
        np.concatenate((a.smoothed_mgdl, b.smoothed_mgdl)), whole.smoothed_mgdl
    )
    np.testing.assert_allclose(np.concatenate((a.pred_20_mgdl, b.pred_20_mgdl)), whole.pred_20_mgdl)


def test_prediction_on_a_steady_fall_and_its_uncertainty_grows() -> None:
    ts = np.arange(0, 2 * 3600, FIVE)
    g = 200.0 - 1.0 * ts / 60.0
    r, _ = process_glucose(ts, g)
    assert r.pred_20_mgdl[-1] == pytest.approx(g[-1] - damped_gain(20.0), abs=0.5)
    assert r.pred_30_mgdl[-1] < r.pred_20_mgdl[-1] < g[-1]
    assert r.pred_30_sd_mgdl[-1] > r.pred_20_sd_mgdl[-1] > 0


def test_ar2_matches_nightscout_on_a_flat_trace_and_continues_a_fall() -> None:
    assert ar2_forecast(140.0, 140.0, 3) == pytest.approx([140.0] * 3, rel=0.02)
    fall = ar2_forecast(110.0, 100.0, 4)
    assert np.all(np.diff(fall) < 0) and fall[0] < 100.0


def test_warmup_and_out_of_range_readings_cannot_alert() -> None:
    ts = np.arange(40) * FIVE
    g = np.full(40, 60.0)
    g[30] = 700.0
    r, _ = process_glucose(ts, g, sensor_start_s=0.0, params=GlucoseStreamParams(warmup_s=3600))
    assert np.all(r.flags[:12] & GlucoseFlag.WARMUP)
    assert np.all(np.isnan(r.alert_mgdl[:12])) and r.alert_mgdl[12] == pytest.approx(60.0)
    assert r.flags[30] & GlucoseFlag.OUT_OF_RANGE and np.isnan(r.alert_mgdl[30])


def test_compression_low_fast_drop_and_rebound_is_flagged() -> None:
    ts = np.arange(30) * FIVE
    g = np.full(30, 120.0)
    g[10:14] = [90.0, 60.0, 58.0, 100.0]  # 60 mg/dL in 10 minutes, back in 10 minutes
    flagged = compression_lows(ts, g)
    assert flagged[10:13].all() and not flagged[:10].any() and not flagged[14:].any()


def test_genuine_slow_low_is_not_a_compression_low() -> None:
    ts = np.arange(60) * FIVE
    g = np.concatenate((np.linspace(120, 50, 30), np.linspace(50, 120, 30)))
    assert not compression_lows(ts, g).any()


def test_calibration_fits_slope_and_offset_and_clamps() -> None:
    sensor = np.array([80.0, 150.0, 250.0])
    cal = fit_calibration(sensor, 1.1 * sensor - 5.0)
    assert cal.slope == pytest.approx(1.1) and cal.offset_mgdl == pytest.approx(-5.0)
    one = fit_calibration(np.array([100.0]), np.array([112.0]))
    assert (one.slope, one.offset_mgdl) == (1.0, 12.0)
    assert fit_calibration(sensor, 2.0 * sensor).slope == 1.3
    assert Calibration.from_dict(cal.to_dict()) == cal


def test_calibration_applies_before_alerts() -> None:
    ts = np.arange(10) * FIVE
    r, _ = process_glucose(ts, np.full(10, 60.0), calibration=Calibration(1.0, -10.0))
    assert r.alert_mgdl[-1] == pytest.approx(50.0)


@pytest.mark.parametrize("kind", list(SensorKind))
def test_directions_vectorised_equals_scalar(kind: SensorKind) -> None:
    th = SPECS[kind].thresholds
    limits = np.array([th.flat, th.single, th.double])
    edges = np.concatenate([limits, np.nextafter(limits, 0), np.nextafter(limits, np.inf)])
    rates = np.concatenate([edges, -edges, [np.nan, np.inf, -np.inf, 0.0, -0.0, 1e9, -1e9]])
    rates = np.concatenate([rates, np.random.default_rng(7).normal(0, th.double, 500)])
    assert directions(rates, th) == [direction(float(x), th) for x in rates]


def test_trend_limits_out_of_order_are_refused() -> None:
    with pytest.raises(ValueError, match="ordered"):
        DirectionThresholds(flat=2.0, single=1.0, double=3.0)
