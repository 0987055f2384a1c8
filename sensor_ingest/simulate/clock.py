"""The simulated clock: starts in the past, runs at ``speed`` x real time, never passes now.

All methods are pure functions of the real time passed in, so the catch-up arithmetic is
testable without sleeping.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SimulatedClock:
    """``now(t) = min(t, sim_start + (t - real_start) * speed)`` in epoch seconds.

    Started behind real time, the clock gains ``speed - 1`` seconds per real second until
    it has caught up, then it keeps to real time (the API rejects readings from the future).
    """

    real_start: float
    sim_start: float
    speed: float = 1.0

    def __post_init__(self) -> None:
        if not self.speed > 0:
            raise ValueError(f"speed must be positive, got {self.speed!r}")

    def now(self, real_now: float) -> float:
        """The simulated time at real time ``real_now``."""
        return min(real_now, self.sim_start + (real_now - self.real_start) * self.speed)

    def lag(self, real_now: float) -> float:
        """How far the simulated clock is behind real time (0 once caught up)."""
        return real_now - self.now(real_now)

    def caught_up_at(self) -> float:
        """The real time at which the clock reaches real time (``inf`` if it never does)."""
        behind = self.real_start - self.sim_start
        if behind <= 0:
            return self.real_start
        if self.speed <= 1:
            return math.inf
        return self.real_start + behind / (self.speed - 1)

    def real_time_for(self, sim_ts: float) -> float:
        """The earliest real time at which ``now()`` is at least ``sim_ts``."""
        return max(sim_ts, self.real_start + (sim_ts - self.sim_start) / self.speed)
