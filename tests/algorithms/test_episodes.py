"""Consensus episode detection (>= 15 min beyond the level, ended by >= 15 min back)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from algorithms.episodes import find_episodes, sustained
from algorithms.glucose_stats import glucose_stats

FIVE = 300.0


def _eps(g: list[float], level: float = 54.0, interval: float = FIVE, ts=None):
    arr = np.array(g, dtype=float)
    t = np.arange(arr.size) * interval if ts is None else np.asarray(ts, dtype=float)
    return find_episodes(t, arr, arr < level, interval_s=interval)


def test_two_readings_below_is_10_minutes_not_an_episode() -> None:
    assert _eps([100, 50, 50, 100, 100, 100]) == []


def test_three_readings_below_is_15_minutes_an_episode() -> None:
    eps = _eps([100, 50, 49, 51, 100, 100, 100])
    assert len(eps) == 1
    assert eps[0].duration_s == 900.0 and eps[0].readings == 3 and eps[0].extreme_value == 49


def test_short_recovery_does_not_end_the_episode() -> None:
    # 10 minutes back above between two dips: still one episode.
    eps = _eps([50, 50, 50, 80, 80, 50, 50, 100, 100, 100])
    assert len(eps) == 1
    assert eps[0].start_s == 0.0 and eps[0].end_s == 7 * FIVE
    assert eps[0].readings == 5


def test_fifteen_minutes_recovery_ends_the_episode() -> None:
    eps = _eps([50, 50, 50, 80, 80, 80, 50, 50, 50, 100])
    assert len(eps) == 2


def test_episode_at_end_of_data_is_reported() -> None:
    eps = _eps([100, 50, 50, 50, 50])
    assert len(eps) == 1 and eps[0].end_s == 5 * FIVE


def test_data_gap_ends_an_episode_and_breaks_runs() -> None:
    # Two readings, a 2-hour gap, two readings: never 15 continuous minutes.
    ts = [0, 300, 7500, 7800]
    assert _eps([50, 50, 50, 50], ts=ts) == []


def test_hyper_episode_reports_peak() -> None:
    g = np.array([150, 260, 300, 280, 150, 150, 150], dtype=float)
    eps = find_episodes(np.arange(7) * FIVE, g, g > 250, interval_s=FIVE, below=False)
    assert len(eps) == 1 and eps[0].extreme_value == 300.0


def test_one_minute_data_needs_fifteen_readings() -> None:
    g = [100] + [50] * 14 + [100] * 20
    assert _eps(g, interval=60.0) == []
    g = [100] + [50] * 15 + [100] * 20
    assert len(_eps(g, interval=60.0)) == 1


def test_sustained_carries_the_start_across_batches() -> None:
    ts = np.array([0.0, 60, 120])
    held, since = sustained(ts, np.array([False, True, True]), 120.0)
    assert held.tolist() == [False, False, False] and since == 60.0
    held, since = sustained(np.array([180.0, 240]), np.array([True, False]), 120.0, since_s=since)
    assert held.tolist() == [True, False] and since is None


# --- Jittered timestamps (issue 18): tolerances come from the device interval. ---


def test_gap_of_901_s_does_not_split_one_hyperglycaemia() -> None:
    # Two missed readings plus one second of jitter: still one episode above 180.
    ts = [0, 300, 600, 900, 1801, 2101, 2401, 2701, 3001, 3301, 3601]
    g = np.array([200, 200, 200, 200, 200, 200, 200, 100, 100, 100, 100], dtype=float)
    eps = find_episodes(np.array(ts, float), g, g > 180, interval_s=FIVE, below=False)
    assert len(eps) == 1
    assert (eps[0].start_s, eps[0].end_s, eps[0].readings) == (0.0, 2401.0 + FIVE, 7)


def test_three_missed_readings_still_split_the_data() -> None:
    # A 20-minute gap (three readings missing) ends the run: two readings either side only.
    ts = [0, 300, 1500, 1800]
    assert _eps([50, 50, 50, 50], ts=ts) == []


def test_three_jittered_readings_below_54_spanning_14_min_37_s_are_an_episode() -> None:
    ts = [0, 300, 577, 877, 1177, 1477]  # last - first below 54: 577 s
    g = [50, 50, 50, 100, 100, 100]
    eps = _eps(g, ts=ts)
    assert len(eps) == 1
    assert eps[0].duration_s == 577.0 + FIVE  # 14 min 37 s: reported as measured
    assert eps[0].readings == 3


def test_two_readings_below_are_never_an_episode_even_stretched_by_jitter() -> None:
    assert _eps([100, 50, 50, 100, 100, 100], ts=[0, 300, 630, 900, 1200, 1500]) == []


def test_recovery_a_few_seconds_short_of_15_min_still_separates_two_episodes() -> None:
    # Three readings back above 54 spanning 9 min 40 s (+ one interval = 14 min 40 s).
    ts = [0, 300, 600, 900, 1180, 1480, 1780, 2080, 2380, 2680, 2980, 3280]
    g = [50, 50, 50, 80, 80, 80, 50, 50, 50, 100, 100, 100]
    assert len(_eps(g, ts=ts)) == 2


def test_two_readings_of_recovery_do_not_end_the_episode_even_stretched_by_jitter() -> None:
    ts = [0, 300, 600, 900, 1230, 1500, 1800, 2100, 2400, 2700, 3000]
    g = [50, 50, 50, 80, 80, 50, 50, 50, 100, 100, 100]
    assert len(_eps(g, ts=ts)) == 1


def test_unsorted_or_repeated_timestamps_are_rejected() -> None:
    g = np.array([50.0, 50.0, 50.0])
    with pytest.raises(ValueError, match="increasing and unique"):
        find_episodes(np.array([0.0, 300.0, 300.0]), g, g < 54, interval_s=FIVE)


def test_duplicate_readings_at_one_instant_count_once_with_the_lowest_value() -> None:
    # The rule (algorithms.series.clean_series): one reading per instant, the lowest value.
    # Two readings below 54 sent twice are still 10 minutes, not an episode ...
    ts = np.array([0.0, 300, 300, 600, 600, 900, 1200, 1500])
    g = np.array([100.0, 50, 50, 50, 50, 100, 100, 100])
    assert glucose_stats(ts, g).hypo_episodes_below_54 == ()
    # ... and a conflicting duplicate keeps the low value: three readings below 54.
    ts = np.array([0.0, 300, 600, 900, 900, 1200, 1500, 1800])
    g = np.array([100.0, 50, 50, 60, 52, 100, 100, 100])
    (ep,) = glucose_stats(ts, g).hypo_episodes_below_54
    assert (ep.readings, ep.extreme_value, ep.start_s) == (3, 50.0, 300.0)


_levels = st.lists(
    st.tuples(st.sampled_from([45.0, 62.0, 120.0, 200.0, 300.0]), st.booleans()),
    min_size=1,
    max_size=120,
)


@settings(max_examples=200, deadline=None)
@given(_levels, st.lists(st.floats(-30.0, 30.0), min_size=120, max_size=120))
def test_jitter_up_to_30_s_never_changes_an_episode_count(levels, jitter) -> None:
    # A 5-minute grid with some readings missing (False), then each timestamp moved by up to
    # +-30 s: every consensus episode count stays the same.
    kept = [(k * FIVE, v) for k, (v, present) in enumerate(levels) if present or k == 0]
    ts = np.array([t for t, _ in kept])
    g = np.array([v for _, v in kept])
    moved = ts + np.array(jitter[: ts.size])
    a, b = glucose_stats(ts, g), glucose_stats(moved, g)
    for name in ("hypo_episodes_below_54", "hypo_episodes_below_70",
                 "hyper_episodes_above_180", "hyper_episodes_above_250"):  # fmt: skip
        assert len(getattr(a, name)) == len(getattr(b, name)), name


def test_sustained_of_no_readings_keeps_the_carried_start() -> None:
    held, since = sustained(np.array([]), np.array([], dtype=bool), 120.0, since_s=42.0)
    assert held.size == 0 and since == 42.0
