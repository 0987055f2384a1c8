"""Consensus episode detection (>= 15 min beyond the level, ended by >= 15 min back)."""

from __future__ import annotations

import numpy as np

from algorithms.episodes import find_episodes, sustained

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
