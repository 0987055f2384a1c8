"""Reading schedules and local-day arithmetic shared by the virtual sensors."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

DAY_S = 86_400
HOUR_S = 3_600


@dataclass(frozen=True, slots=True)
class ReadingGrid:
    """When a sensor takes readings: at ``k * interval_s + phase_s`` epoch seconds."""

    interval_s: int
    phase_s: int = 0

    def times_between(self, start: float, end: float) -> np.ndarray:
        """Reading times ``t`` with ``start <= t < end``, ascending, as float epoch seconds."""
        first = math.ceil((start - self.phase_s) / self.interval_s)
        last = math.ceil((end - self.phase_s) / self.interval_s)  # exclusive
        ks = np.arange(first, max(first, last), dtype=np.int64)
        return (ks * self.interval_s + self.phase_s).astype(np.float64)

    def slots(self, ts: np.ndarray) -> np.ndarray:
        """The index ``k`` of the schedule slot ``[k * interval_s + phase_s, ...)`` of each time."""
        return np.floor((ts - self.phase_s) / self.interval_s).astype(np.int64)

    def next_at_or_after(self, t: float) -> float:
        """The first reading time ``>= t``."""
        k = math.ceil((t - self.phase_s) / self.interval_s)
        return float(k * self.interval_s + self.phase_s)


def local_days(ts: np.ndarray, tz_offset_s: int) -> np.ndarray:
    """The local day number (days since the epoch in local time) of each timestamp."""
    return np.floor((np.asarray(ts, dtype=np.float64) + tz_offset_s) / DAY_S).astype(np.int64)


def day_start(day: int, tz_offset_s: int) -> float:
    """Epoch seconds of local midnight starting ``day``."""
    return float(day * DAY_S - tz_offset_s)


def local_hour(ts: np.ndarray, tz_offset_s: int) -> np.ndarray:
    """Local hour of day in [0, 24) of each timestamp."""
    return np.mod(np.asarray(ts, dtype=np.float64) + tz_offset_s, DAY_S) / HOUR_S
