"""Episodes of a level being crossed, by the 2019 international consensus definition.

An episode starts once readings stay beyond the level for at least ``min_duration_s``
(15 minutes) and ends once they stay back for at least ``end_duration_s`` (15 minutes). A
reading stands for one sampling interval, so three consecutive 5-minute readings make 15
minutes. A data gap longer than ``max_gap_s`` ends a run: nothing is assumed across it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.series import runs, segment_ids

CONSENSUS_EPISODE_S = 15 * 60


@dataclass(frozen=True, slots=True)
class Episode:
    start_s: float
    end_s: float
    duration_s: float
    extreme_value: float  # nadir for levels crossed downwards, peak for upwards
    readings: int


def _run_table(
    ts: np.ndarray, mask: np.ndarray, interval_s: float, seg: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Runs of equal mask within gap-free segments: start idx, end idx (excl), value, span."""
    change = np.concatenate(([True], (mask[1:] != mask[:-1]) | (seg[1:] != seg[:-1])))
    starts = np.flatnonzero(change)
    ends = np.concatenate((starts[1:], [ts.size]))
    span = ts[ends - 1] - ts[starts] + interval_s
    return starts, ends, mask[starts], span


def find_episodes(
    ts_s: np.ndarray,
    values: np.ndarray,
    beyond: np.ndarray,
    *,
    interval_s: float,
    min_duration_s: float = CONSENSUS_EPISODE_S,
    end_duration_s: float = CONSENSUS_EPISODE_S,
    max_gap_s: float | None = None,
    below: bool = True,
    segments: np.ndarray | None = None,
) -> list[Episode]:
    """Episodes in a sorted, de-duplicated series; ``beyond`` marks readings past the level.

    A gap longer than ``max_gap_s`` (default: three intervals) splits the data; ``segments``
    may pass :func:`algorithms.series.segment_ids` already computed for that gap.
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    mask = np.asarray(beyond, dtype=bool)
    if ts.size == 0 or not mask.any():
        return []
    gap = 3 * interval_s if max_gap_s is None else max_gap_s
    seg = segment_ids(ts, gap) if segments is None else segments
    starts, ends, inside, span = _run_table(ts, mask, interval_s, seg)
    out: list[Episode] = []
    open_start: int | None = None
    last_in_end = 0

    def close(end_idx: int) -> None:
        nonlocal open_start
        assert open_start is not None
        sl = slice(open_start, end_idx)
        seg_v, seg_m = v[sl], mask[sl]
        ext = float(seg_v[seg_m].min() if below else seg_v[seg_m].max())
        start_s, end_s = float(ts[open_start]), float(ts[end_idx - 1] + interval_s)
        out.append(Episode(start_s, end_s, end_s - start_s, ext, int(seg_m.sum())))
        open_start = None

    for k in range(starts.size):
        s, e = int(starts[k]), int(ends[k])
        if open_start is not None and seg[s] != seg[open_start]:
            close(last_in_end)  # the gap ended the episode at its last reading beyond
        if inside[k]:
            if open_start is None and span[k] >= min_duration_s:
                open_start = s
            if open_start is not None:
                last_in_end = e
        elif open_start is not None and span[k] >= end_duration_s:
            close(last_in_end)
    if open_start is not None:
        close(last_in_end)
    return out


def sustained(
    ts_s: np.ndarray,
    condition: np.ndarray,
    min_duration_s: float,
    *,
    since_s: float | None = None,
) -> tuple[np.ndarray, float | None]:
    """Where ``condition`` has held continuously for at least ``min_duration_s``.

    ``since_s`` is when the condition started holding before this batch (carried state);
    the second result is the same for the end of this batch (None when it does not hold).
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    cond = np.asarray(condition, dtype=bool)
    if ts.size == 0:
        return np.zeros(0, dtype=bool), since_s
    st, en = runs(cond)
    run_start = np.full(ts.size, np.nan)
    for s, e in zip(st, en, strict=True):
        begin = since_s if (s == 0 and since_s is not None) else ts[s]
        run_start[s:e] = begin
    held = cond & (ts - run_start >= min_duration_s)
    carry = float(run_start[-1]) if cond[-1] else None
    return held, carry
