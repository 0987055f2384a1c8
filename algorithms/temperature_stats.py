"""Temperature statistics over a window: min, max, mean, time in fever, fever episodes.

Input is core temperature (after the site offset; patch-off readings as NaN or left out).
Like the glucose statistics, readings are de-duplicated by timestamp and order is irrelevant;
time in fever is the share of readings at or above the fever level.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from algorithms.episodes import Episode, find_episodes
from algorithms.series import clean_window, data_sufficiency
from algorithms.temperature import FEVER_C

FEVER_EPISODE_S = 30 * 60.0


@dataclass(frozen=True, slots=True)
class TemperatureStats:
    start_s: float
    end_s: float
    interval_s: float
    readings: int
    expected_readings: int
    data_sufficiency_pct: float
    min_c: float
    max_c: float
    mean_c: float
    fever_c: float
    time_in_fever_pct: float
    time_in_fever_s: float
    fever_episodes: tuple[Episode, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def temperature_stats(
    ts_s: np.ndarray,
    core_c: np.ndarray,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    interval_s: float = 60.0,
    fever_c: float = FEVER_C,
    min_episode_s: float = FEVER_EPISODE_S,
) -> TemperatureStats:
    ts, c, lo, hi = clean_window(ts_s, core_c, start_s, end_s)
    n = int(c.size)
    expected, sufficiency = data_sufficiency(n, lo, hi, interval_s)
    nan = float("nan")
    fever = c >= fever_c
    episodes = find_episodes(
        ts,
        c,
        fever,
        interval_s=interval_s,
        min_duration_s=min_episode_s,
        end_duration_s=min_episode_s,
        below=False,
    )
    return TemperatureStats(
        start_s=float(lo),
        end_s=float(hi),
        interval_s=float(interval_s),
        readings=n,
        expected_readings=expected,
        data_sufficiency_pct=sufficiency,
        min_c=float(c.min()) if n else nan,
        max_c=float(c.max()) if n else nan,
        mean_c=float(c.mean()) if n else nan,
        fever_c=float(fever_c),
        time_in_fever_pct=100.0 * float(fever.mean()) if n else nan,
        time_in_fever_s=float(np.count_nonzero(fever)) * interval_s,
        fever_episodes=tuple(episodes),
    )
