"""Episodes of a level being crossed, by the 2019 international consensus definition.

The consensus (Battelino et al. 2019; Danne et al. 2017): "an event begins when at least
15 consecutive minutes are beyond the threshold and ends when at least 15 consecutive minutes
are back". A reading stands for one sampling interval, so three consecutive 5-minute readings
make 15 minutes; a run's length is ``last - first + interval``.

Real sensor timestamps jitter by seconds, so both comparisons carry a tolerance derived from
the device interval, never from fixed seconds:

* **Duration slack** (``DURATION_SLACK``, half an interval): a run lasts 15 minutes when its
  length is at least ``15 min - interval / 2``. Three 5-minute readings spanning 14 min 37 s
  are an episode (and three readings back end one); two readings (10 min) never are. In effect
  the rule counts readings, whatever the jitter below a quarter interval per reading.
* **Gap tolerance** (``GAP_INTERVALS``, three and a half intervals): up to two missed readings
  do not break a run, so one hyperglycaemia across a 901 s gap stays one episode; a longer gap
  ends the run (nothing is assumed across it) and the episode ends at its last reading beyond.

Readings must be sorted and unique in time. At one instant there is one reading:
:func:`algorithms.series.clean_series` keeps the lowest value of duplicates (the conservative
choice for hypoglycaemia), so a repeated reading never lengthens or doubles an episode.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.series import runs, segment_ids

CONSENSUS_EPISODE_S = 15 * 60
DURATION_SLACK = 0.5  # intervals of slack on the 15-minute durations
GAP_INTERVALS = 3.5  # longest gap (in intervals) that does not break a run: 2 missed + slack


def continuing_gap_s(interval_s: float) -> float:
    """The longest gap between readings that continues a run (two missed readings + slack)."""
    return GAP_INTERVALS * interval_s


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

    A gap longer than ``max_gap_s`` (default: :func:`continuing_gap_s`) splits the
    data; ``segments`` may pass :func:`algorithms.series.segment_ids` already computed for that
    gap. Durations are compared with half an interval of slack (see the module docstring).
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    mask = np.asarray(beyond, dtype=bool)
    if ts.size == 0 or not mask.any():
        return []
    if not bool((ts[1:] > ts[:-1]).all()):
        raise ValueError("timestamps must be increasing and unique (use clean_series)")
    gap = GAP_INTERVALS * interval_s if max_gap_s is None else max_gap_s
    seg = segment_ids(ts, gap) if segments is None else segments
    starts, ends, inside, span = _run_table(ts, mask, interval_s, seg)
    slack = DURATION_SLACK * interval_s
    min_duration_s, end_duration_s = min_duration_s - slack, end_duration_s - slack
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
