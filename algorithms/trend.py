"""Rate of change and trend direction of an interval-sampled stream.

The rate at a reading is the least-squares slope of the readings in the window that ends
at it (``[t - window_s, t]``). Too few readings, or readings spanning too short a time,
make the rate not computable (NaN) rather than a guess.
"""

from __future__ import annotations

from enum import StrEnum

import numpy as np

from algorithms.sensors import DirectionThresholds

TREND_WINDOW_S = 15 * 60
MIN_POINTS = 3
MIN_SPAN_S = 10 * 60


class Direction(StrEnum):
    """Trend arrows, named as Dexcom and Nightscout name them."""

    DOUBLE_UP = "DoubleUp"
    SINGLE_UP = "SingleUp"
    FORTY_FIVE_UP = "FortyFiveUp"
    FLAT = "Flat"
    FORTY_FIVE_DOWN = "FortyFiveDown"
    SINGLE_DOWN = "SingleDown"
    DOUBLE_DOWN = "DoubleDown"
    NOT_COMPUTABLE = "NOT COMPUTABLE"


def rate_per_min(
    ts_s: np.ndarray,
    values: np.ndarray,
    *,
    window_s: float = TREND_WINDOW_S,
    min_points: int = MIN_POINTS,
    min_span_s: float = MIN_SPAN_S,
) -> np.ndarray:
    """Slope (unit per minute) at every reading of a stream sorted by time.

    ``ts_s`` are seconds (any epoch), strictly increasing; the result has NaN where the
    window holds fewer than ``min_points`` readings or spans less than ``min_span_s``.
    """
    ts_s = np.asarray(ts_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    n = ts_s.size
    if n == 0:
        return np.empty(0)
    # Minutes from the first reading keep the sums small enough for float64 to stay exact.
    t = (ts_s - ts_s[0]) / 60.0
    start = np.searchsorted(ts_s, ts_s - window_s, side="left")
    end = np.arange(1, n + 1)

    def window_sum(x: np.ndarray) -> np.ndarray:
        c = np.concatenate(([0.0], np.cumsum(x)))
        return c[end] - c[start]

    count = (end - start).astype(np.float64)
    st, sv = window_sum(t), window_sum(values)
    stt, stv = window_sum(t * t), window_sum(t * values)
    sxx = stt - st * st / count
    sxy = stv - st * sv / count
    span_s = ts_s - ts_s[start]
    ok = (count >= min_points) & (span_s >= min_span_s) & (sxx > 0)
    out = np.full(n, np.nan)
    out[ok] = sxy[ok] / sxx[ok]
    return out


def rates_at_many(
    ts_s: np.ndarray,
    values: np.ndarray,
    lengths: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    *,
    window_s: float = TREND_WINDOW_S,
    min_points: int = MIN_POINTS,
    min_span_s: float = MIN_SPAN_S,
) -> np.ndarray:
    """:func:`rate_per_min` of many streams at once, at the readings ``(rows, cols)`` only.

    Stream ``r`` is ``ts_s[r, :lengths[r]]`` (sorted, strictly increasing; what lies past
    its length is ignored). Bit for bit what :func:`rate_per_min` gives for each stream on
    its own: the same prefix sums from each stream's first reading, accumulated in order.
    """
    ts_s = np.asarray(ts_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    valid = np.arange(ts_s.shape[1]) < np.asarray(lengths)[:, None]
    t = np.where(valid, (ts_s - ts_s[:, :1]) / 60.0, 0.0)
    v = np.where(valid, values, 0.0)
    at = ts_s[rows, cols]
    # searchsorted(side="left") in each query's own stream: how many of its readings are older.
    start = ((ts_s[rows] < (at - window_s)[:, None]) & valid[rows]).sum(axis=1)
    end = cols + 1

    def window_sum(x: np.ndarray) -> np.ndarray:
        c = np.concatenate((np.zeros((x.shape[0], 1)), np.cumsum(x, axis=1)), axis=1)
        summed: np.ndarray = c[rows, end] - c[rows, start]
        return summed

    count = (end - start).astype(np.float64)
    st, sv = window_sum(t), window_sum(v)
    stt, stv = window_sum(t * t), window_sum(t * v)
    sxx = stt - st * st / count
    sxy = stv - st * sv / count
    span_s = at - ts_s[rows, start]
    ok = (count >= min_points) & (span_s >= min_span_s) & (sxx > 0)
    out = np.full(rows.size, np.nan)
    out[ok] = sxy[ok] / sxx[ok]
    return out


def direction(rate: float, thresholds: DirectionThresholds) -> Direction:
    """The arrow for one rate; NaN gives NOT COMPUTABLE."""
    if not np.isfinite(rate):
        return Direction.NOT_COMPUTABLE
    magnitude = abs(rate)
    if magnitude < thresholds.flat:
        return Direction.FLAT
    up = rate > 0
    if magnitude < thresholds.single:
        return Direction.FORTY_FIVE_UP if up else Direction.FORTY_FIVE_DOWN
    if magnitude <= thresholds.double:
        return Direction.SINGLE_UP if up else Direction.SINGLE_DOWN
    return Direction.DOUBLE_UP if up else Direction.DOUBLE_DOWN


_ARROWS_DOWN_TO_UP = np.array(
    [
        Direction.DOUBLE_DOWN,
        Direction.SINGLE_DOWN,
        Direction.FORTY_FIVE_DOWN,
        Direction.FLAT,
        Direction.FORTY_FIVE_UP,
        Direction.SINGLE_UP,
        Direction.DOUBLE_UP,
        Direction.NOT_COMPUTABLE,
    ],
    dtype=object,
)


def directions(rates: np.ndarray, thresholds: DirectionThresholds) -> list[Direction]:
    """:func:`direction` for every rate of an array, vectorised."""
    r = np.asarray(rates, dtype=np.float64)
    m = np.abs(r)
    # How many limits the rate's size reaches (the limits are ordered): 0 flat ... 3 double.
    band = (
        (m >= thresholds.flat).astype(np.int8) + (m >= thresholds.single) + (m > thresholds.double)
    )
    level = np.where(r > 0, 3 + band, 3 - band)
    level[~np.isfinite(r)] = 7
    return list(_ARROWS_DOWN_TO_UP[level])
