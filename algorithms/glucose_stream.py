"""The per-batch glucose pipeline a device actor runs: calibrate, flag, filter, trend, predict.

``process_glucose`` takes the new readings (sorted, de-duplicated) and the stream state from
the previous batch, and returns per-reading results plus the new state. ``alert_mgdl`` is the
value the alert rules should see: the lower of raw and filtered for usable readings, so
smoothing can never make a low later, and NaN for readings that must not raise alerts
(warm-up, out of range, implausible jumps, compression lows).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from algorithms.calibration import Calibration
from algorithms.glucose_flags import (
    UNUSABLE,
    WARMUP_S,
    GlucoseFlag,
    compression_lows,
    range_and_warmup_flags,
)
from algorithms.prediction import DEFAULT_TAU_MIN, forecast
from algorithms.sensors import SensorKind, spec_for
from algorithms.smoothing import (
    KalmanParams,
    KalmanResult,
    KalmanState,
    KalmanStates,
    kalman_glucose,
    kalman_step_many,
)
from algorithms.trend import Direction, directions

GlucoseStreamState = KalmanState


@dataclass(frozen=True, slots=True)
class GlucoseStreamParams:
    kalman: KalmanParams = field(default_factory=KalmanParams)
    tau_min: float = DEFAULT_TAU_MIN
    warmup_s: float = WARMUP_S
    detect_compression: bool = True


@dataclass(frozen=True, slots=True)
class GlucoseStream:
    ts_s: np.ndarray
    raw_mgdl: np.ndarray  # after calibration
    smoothed_mgdl: np.ndarray
    alert_mgdl: np.ndarray  # what alert rules see; NaN when the reading is unusable
    rate_mgdl_per_min: np.ndarray
    direction: list[Direction]
    pred_20_mgdl: np.ndarray
    pred_20_sd_mgdl: np.ndarray
    pred_30_mgdl: np.ndarray
    pred_30_sd_mgdl: np.ndarray
    flags: np.ndarray  # GlucoseFlag bits, uint16

    def usable(self) -> np.ndarray:
        return np.asarray((self.flags & int(UNUSABLE)) == 0)


def process_glucose(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    state: GlucoseStreamState | None = None,
    *,
    sensor_start_s: float | None = None,
    calibration: Calibration | None = None,
    params: GlucoseStreamParams = GlucoseStreamParams(),
) -> tuple[GlucoseStream, GlucoseStreamState | None]:
    ts = np.asarray(ts_s, dtype=np.float64)
    raw = np.asarray(mgdl, dtype=np.float64)
    if calibration is not None:
        raw = calibration.apply(raw)
    flags = range_and_warmup_flags(ts, raw, sensor_start_s=sensor_start_s, warmup_s=params.warmup_s)
    filt_in = np.where(flags & int(GlucoseFlag.OUT_OF_RANGE), np.nan, raw)
    kal = kalman_glucose(ts, filt_in, state, params.kalman)
    comp = compression_lows(ts, filt_in) if params.detect_compression else None
    return _stream(ts, raw, flags, kal, comp, params), kal.state


def process_glucose_latest(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    states: KalmanStates,
    params: GlucoseStreamParams = GlucoseStreamParams(),
) -> tuple[GlucoseStream, KalmanStates]:
    """:func:`process_glucose` of one new reading for each of many streams, as arrays:
    entry ``i`` is stream ``i``'s reading (newer than its state) and state. The same results,
    bit for bit, as ``process_glucose`` of each stream's one-reading batch (no calibration
    or warm-up: a single reading has no compression low either, which needs three)."""
    ts = np.asarray(ts_s, dtype=np.float64)
    raw = np.asarray(mgdl, dtype=np.float64)
    flags = range_and_warmup_flags(ts, raw, warmup_s=params.warmup_s)
    filt_in = np.where(flags & int(GlucoseFlag.OUT_OF_RANGE), np.nan, raw)
    kal, new_states = kalman_step_many(ts, filt_in, states, params.kalman)
    return _stream(ts, raw, flags, kal, None, params), new_states


def _stream(
    ts: np.ndarray,
    raw: np.ndarray,
    flags: np.ndarray,
    kal: KalmanResult,
    compression: np.ndarray | None,
    params: GlucoseStreamParams,
) -> GlucoseStream:
    """Flags, alert values, directions and forecasts from the filtered readings."""
    flags |= np.where(kal.implausible_jump, int(GlucoseFlag.IMPLAUSIBLE_JUMP), 0).astype(np.uint16)
    flags |= np.where(kal.outlier, int(GlucoseFlag.OUTLIER), 0).astype(np.uint16)
    if compression is not None:
        flags |= np.where(compression, int(GlucoseFlag.COMPRESSION_LOW), 0).astype(np.uint16)
    usable = (flags & int(UNUSABLE)) == 0
    skipped = kal.outlier | kal.implausible_jump
    alert = np.where(skipped, kal.level_mgdl, np.fmin(raw, kal.level_mgdl))
    alert = np.where(usable, alert, np.nan)
    f20 = forecast(kal, 20.0, tau_min=params.tau_min, params=params.kalman)
    f30 = forecast(kal, 30.0, tau_min=params.tau_min, params=params.kalman)
    thresholds = spec_for(SensorKind.GLUCOSE).thresholds
    return GlucoseStream(
        ts_s=ts,
        raw_mgdl=raw,
        smoothed_mgdl=kal.level_mgdl,
        alert_mgdl=alert,
        rate_mgdl_per_min=kal.rate_mgdl_per_min,
        direction=directions(kal.rate_mgdl_per_min, thresholds),
        pred_20_mgdl=np.where(usable, f20.mgdl, np.nan),
        pred_20_sd_mgdl=f20.sd_mgdl,
        pred_30_mgdl=np.where(usable, f30.mgdl, np.nan),
        pred_30_sd_mgdl=f30.sd_mgdl,
        flags=flags,
    )


def state_to_dict(state: GlucoseStreamState | None) -> dict[str, Any] | None:
    return None if state is None else state.to_dict()


def state_from_dict(d: dict[str, Any] | None) -> GlucoseStreamState | None:
    return None if d is None else KalmanState.from_dict(d)
