"""Shared handling of raw series: sorting, de-duplication by timestamp, gap segmentation,
windows and their data sufficiency."""

from __future__ import annotations

import numpy as np


def clean_series(ts_s: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Readings sorted by time, one per timestamp, non-finite values dropped.

    The result does not depend on the order of the input or on repeated readings: readings
    sharing a timestamp count once, and if their values differ the lowest is kept (the
    conservative choice for hypoglycaemia).
    """
    ts = np.asarray(ts_s, dtype=np.float64).ravel()
    v = np.asarray(values, dtype=np.float64).ravel()
    if ts.shape != v.shape:
        raise ValueError(f"ts_s and values differ in length: {ts.size} != {v.size}")
    ok = np.isfinite(ts) & np.isfinite(v)
    if not ok.all():
        ts, v = ts[ok], v[ok]
    if ts.size < 2 or bool((ts[1:] > ts[:-1]).all()):
        return ts, v  # already sorted and unique: the common case
    order = np.argsort(ts, kind="stable")
    ts, v = ts[order], v[order]
    new = np.concatenate(([True], ts[1:] != ts[:-1]))
    if not new.all():
        starts = np.flatnonzero(new)
        v = np.minimum.reduceat(v, starts)
        ts = ts[starts]
    return ts, v


def segment_ids(ts_s: np.ndarray, max_gap_s: float) -> np.ndarray:
    """Segment number of each reading of a sorted series; a gap > ``max_gap_s`` starts a new one."""
    ts = np.asarray(ts_s, dtype=np.float64)
    if ts.size == 0:
        return np.empty(0, dtype=np.int64)
    return np.concatenate(([0], np.cumsum(np.diff(ts) > max_gap_s)))


def runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) indices of the runs of True in a boolean array."""
    m = np.asarray(mask, dtype=bool)
    d = np.diff(np.concatenate(([False], m, [False])).astype(np.int8))
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def forward_fill_state(code: np.ndarray, initial: bool) -> np.ndarray:
    """Latching state from a code array: 1 sets, 0 resets, -1 keeps the previous state.

    This is how hysteresis is evaluated without a Python loop.
    """
    code = np.asarray(code, dtype=np.int8)
    n = code.size
    idx = np.where(code >= 0, np.arange(n), -1)
    last = np.maximum.accumulate(idx) if n else idx
    out = np.full(n, bool(initial))
    has = last >= 0
    out[has] = code[last[has]] == 1
    return out


def clean_window(
    ts_s: np.ndarray, values: np.ndarray, start_s: float | None, end_s: float | None
) -> tuple[np.ndarray, np.ndarray, float, float]:
    """The cleaned readings in ``[start_s, end_s)`` and the window's bounds; an open bound
    closes on the first (last) reading."""
    ts, v = clean_series(ts_s, values)
    lo = start_s if start_s is not None else (float(ts[0]) if ts.size else 0.0)
    hi = end_s if end_s is not None else (float(ts[-1]) + 1.0 if ts.size else 0.0)
    keep = (ts >= lo) & (ts < hi)
    return ts[keep], v[keep], float(lo), float(hi)


def data_sufficiency(
    readings: int, start_s: float, end_s: float, interval_s: float
) -> tuple[int, float]:
    """Readings expected in ``[start_s, end_s)`` at ``interval_s``, and the share (%, at most
    100) of them present; the share is NaN when the window expects none."""
    expected = int(max(0.0, end_s - start_s) // interval_s)
    return expected, min(100.0, 100.0 * readings / expected) if expected else float("nan")
