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
    first, last = _episode_runs(seg, starts, inside, span, min_duration_s, end_duration_s)
    if first.size == 0:
        return []
    lo, hi = starts[first], ends[last]  # reading slices [lo, hi) of each episode
    fill = np.inf if below else -np.inf
    marked = np.append(np.where(mask, v, fill), fill)
    reduce = np.minimum if below else np.maximum
    ext = reduce.reduceat(marked, np.column_stack((lo, hi)).ravel())[::2]
    count = np.concatenate(([0], np.cumsum(mask)))
    begin, finish = ts[lo], ts[hi - 1] + interval_s
    return [
        Episode(float(b), float(f), float(f - b), float(x), int(n))
        for b, f, x, n in zip(begin, finish, ext, count[hi] - count[lo], strict=True)
    ]


def _episode_runs(
    seg: np.ndarray,
    starts: np.ndarray,
    inside: np.ndarray,
    span: np.ndarray,
    min_duration_s: float,
    end_duration_s: float,
) -> tuple[np.ndarray, np.ndarray]:
    """First and last run of each episode, without a loop over runs.

    A long enough run back (or a gap) closes whatever is open, so the runs fall into blocks
    between such closers. In each block the episode opens at the first long enough run beyond
    and lasts to the block's last run beyond; a block without such a run has no episode."""
    new_segment = np.concatenate(([False], seg[starts[1:]] != seg[starts[:-1]]))
    closer = ~inside & (span >= end_duration_s)
    block = np.cumsum(new_segment) + np.concatenate(([0], np.cumsum(closer[:-1])))
    opener = np.flatnonzero(inside & (span >= min_duration_s))
    blocks, pos = np.unique(block[opener], return_index=True)
    beyond = np.flatnonzero(inside)
    last = beyond[np.searchsorted(block[beyond], blocks, side="right") - 1]
    return opener[pos], last


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
