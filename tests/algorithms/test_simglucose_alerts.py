"""Alerts on UVA/Padova T1D simulator traces (simglucose), replayed reading by reading.

The traces were generated once by ``tests/data/make_simglucose_traces.py`` and committed;
the figures for the report come from ``python tests/algorithms/sim_replay.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from sim_replay import analyse, genuine_episodes, load_traces

from algorithms.glucose_stats import glucose_stats


@pytest.fixture(scope="module")
def summary():
    return analyse(load_traces())


def test_traces_contain_genuine_lows_and_low_free_days(summary) -> None:
    assert summary.episodes >= 20
    assert summary.low_free_days >= 5
    assert summary.days >= 40


def test_every_genuine_episode_below_54_raises_urgent_low_or_urgent_low_soon(summary) -> None:
    assert summary.detected == summary.episodes


def test_urgent_low_soon_fires_before_the_sensor_crosses_55_in_most_episodes(summary) -> None:
    assert summary.soon_before_crossing >= 0.75 * summary.episodes
    assert summary.median_lead_min > 0


def test_no_low_alerts_on_days_without_lows(summary) -> None:
    assert summary.alerts_on_low_free_days == 0


def test_false_urgent_alerts_stay_rare(summary) -> None:
    assert summary.false_urgent / summary.days < 1.0


def test_consensus_episode_count_on_a_simulated_trace_matches_stats() -> None:
    tr = load_traces()[1]
    eps = genuine_episodes(tr)
    stats = glucose_stats(tr.ts_s, tr.bg_mgdl, interval_s=tr.interval_s)
    assert len(stats.hypo_episodes_below_54) == len(eps) > 0
    assert all(e.duration_s >= 900 for e in eps)
    assert np.isclose(stats.gmi_pct, 3.31 + 0.02392 * tr.bg_mgdl.mean())
