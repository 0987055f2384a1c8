"""Flags on glucose readings: out of range, warm-up, compression low (and filter verdicts)."""

from __future__ import annotations

from enum import IntFlag

import numpy as np

from algorithms.sensors import SensorKind, spec_for

WARMUP_S = 2 * 3600  # Dexcom G6 / Libre; G7 needs 30 minutes: pass warmup_s


class GlucoseFlag(IntFlag):
    NONE = 0
    OUT_OF_RANGE = 1  # outside the sensor's physical range
    WARMUP = 2  # within the warm-up period after the sensor started
    IMPLAUSIBLE_JUMP = 4  # moved faster than physiology allows (skipped by the filter)
    OUTLIER = 8  # far above the prediction (skipped by the filter)
    COMPRESSION_LOW = 16  # part of a fast drop and rebound (pressure on the sensor)


# Readings with any of these must not raise value alerts.
UNUSABLE = (
    GlucoseFlag.OUT_OF_RANGE
    | GlucoseFlag.WARMUP
    | GlucoseFlag.IMPLAUSIBLE_JUMP
    | GlucoseFlag.COMPRESSION_LOW
)


def range_and_warmup_flags(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    sensor_start_s: float | None = None,
    warmup_s: float = WARMUP_S,
) -> np.ndarray:
    spec = spec_for(SensorKind.GLUCOSE)
    g = np.asarray(mgdl, dtype=np.float64)
    ts = np.asarray(ts_s, dtype=np.float64)
    flags = np.where((g < spec.min_value) | (g > spec.max_value) | ~np.isfinite(g), 1, 0)
    if sensor_start_s is not None:
        flags |= np.where(ts < sensor_start_s + warmup_s, int(GlucoseFlag.WARMUP), 0)
    return flags.astype(np.uint16)


def compression_lows(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    min_drop_mgdl: float = 25.0,
    min_rate_mgdl_per_min: float = 2.5,
    rebound_fraction: float = 0.7,
    max_drop_s: float = 20 * 60.0,
    max_rebound_s: float = 40 * 60.0,
) -> np.ndarray:
    """Readings inside a compression artefact: a fast drop followed by a fast rebound.

    A nadir qualifies when, within ``max_drop_s`` before it, glucose was at least
    ``min_drop_mgdl`` higher and fell at ``min_rate_mgdl_per_min`` or faster, and within
    ``max_rebound_s`` after it recovered ``rebound_fraction`` of the drop at that rate too.
    Real lows do not bounce back that fast without the drop having been too fast as well.
    The flag is retrospective: it appears once the rebound is in the data.
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    g = np.asarray(mgdl, dtype=np.float64)
    n = ts.size
    out = np.zeros(n, dtype=bool)
    if n < 3:
        return out
    # Candidate nadirs: local minima that are below a reading within max_drop_s by min_drop.
    is_min = np.zeros(n, dtype=bool)
    is_min[1:-1] = (g[1:-1] <= g[:-2]) & (g[1:-1] < g[2:])
    if not is_min.any():  # no nadir, no artefact (a steady rise or fall)
        return out
    # Vectorised pre-check over lags: a drop of min_drop at min_rate within max_drop_s.
    step = float(np.median(np.diff(ts)))
    max_lag = int(min(n - 1, max(1, round(max_drop_s / max(step, 1.0)) + 1)))
    fast_drop = np.zeros(n, dtype=bool)
    for m in range(1, max_lag + 1):
        drop = g[:-m] - g[m:]
        dt_min = (ts[m:] - ts[:-m]) / 60.0
        ok = (drop >= min_drop_mgdl) & (drop >= min_rate_mgdl_per_min * dt_min)
        fast_drop[m:] |= ok & (dt_min * 60.0 <= max_drop_s)
    for i in np.flatnonzero(is_min & fast_drop):
        lo = np.searchsorted(ts, ts[i] - max_drop_s, side="left")
        pre = g[lo:i]
        # Defensive only: fast_drop[i] means a reading within max_drop_s before i, so on
        # sorted input (the contract) pre is never empty.
        if pre.size == 0:  # pragma: no cover
            continue
        j = lo + pre.size - 1 - int(np.argmax(pre[::-1]))  # last reading at the peak
        drop = g[j] - g[i]
        if drop < min_drop_mgdl or drop / ((ts[i] - ts[j]) / 60.0) < min_rate_mgdl_per_min:
            continue
        hi = np.searchsorted(ts, ts[i] + max_rebound_s, side="right")
        target = g[i] + rebound_fraction * drop
        after = np.flatnonzero(g[i + 1 : hi] >= target)
        if after.size == 0:
            continue
        k = i + 1 + int(after[0])
        if (g[k] - g[i]) / ((ts[k] - ts[i]) / 60.0) < min_rate_mgdl_per_min:
            continue
        out[j + 1 : k] = True
    return out
