"""The simulated clock and the reading schedule, as pure functions of the real time."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensor_ingest.simulate import SimulatedClock
from sensor_ingest.simulate.timegrid import ReadingGrid

REAL_START = 1_750_000_000.0


@given(
    lag=st.floats(0, 30 * 86_400),
    speed=st.floats(0.1, 10_000),
    elapsed=st.floats(0, 30 * 86_400),
)
def test_never_ahead_of_real_time_and_monotonic(lag: float, speed: float, elapsed: float) -> None:
    clock = SimulatedClock(REAL_START, REAL_START - lag, speed)
    now = REAL_START + elapsed
    assert clock.now(now) <= now
    assert clock.now(now + 1.0) >= clock.now(now)
    assert clock.lag(now) >= 0


def test_catches_up_at_speed_then_keeps_real_time() -> None:
    clock = SimulatedClock(REAL_START, REAL_START - 3600, speed=60)
    assert clock.now(REAL_START) == REAL_START - 3600
    assert clock.now(REAL_START + 10) == pytest.approx(REAL_START - 3600 + 600)
    caught = clock.caught_up_at()
    assert caught == pytest.approx(REAL_START + 3600 / 59)
    assert clock.now(caught) == pytest.approx(caught)
    assert clock.lag(caught + 1000) == 0
    assert clock.now(caught + 1000) == caught + 1000


def test_at_real_speed_a_lagging_clock_never_catches_up() -> None:
    clock = SimulatedClock(REAL_START, REAL_START - 600, speed=1)
    assert clock.caught_up_at() == math.inf
    assert clock.lag(REAL_START + 86_400) == pytest.approx(600)
    assert SimulatedClock(REAL_START, REAL_START).caught_up_at() == REAL_START


def test_speed_must_be_positive() -> None:
    with pytest.raises(ValueError):
        SimulatedClock(REAL_START, REAL_START, speed=0)


@given(
    lag=st.floats(0, 86_400),
    speed=st.floats(0.5, 1000),
    ahead=st.floats(0, 2 * 86_400),
)
def test_real_time_for_is_the_earliest_moment_a_reading_is_due(
    lag: float, speed: float, ahead: float
) -> None:
    clock = SimulatedClock(REAL_START, REAL_START - lag, speed)
    target = clock.sim_start + ahead
    wake = clock.real_time_for(target)
    # Float rounding at epoch scale: one ulp of real time is `speed` ulps of simulated time.
    tolerance = 4 * math.ulp(wake) * speed + 1e-6
    assert clock.now(wake) >= target - tolerance
    assert clock.now(wake - 1e-3) < target + tolerance


def test_reading_grid_half_open_and_aligned() -> None:
    grid = ReadingGrid(300, phase_s=17)
    ts = grid.times_between(1017, 2217)
    np.testing.assert_array_equal(ts, [1217, 1517, 1817, 2117])
    assert grid.times_between(1217, 1217).size == 0
    assert grid.times_between(1217, 1218).tolist() == [1217]
    assert grid.next_at_or_after(1218) == 1517
    assert grid.next_at_or_after(1517) == 1517
    split = np.concatenate([grid.times_between(0, 5000), grid.times_between(5000, 9000)])
    np.testing.assert_array_equal(split, grid.times_between(0, 9000))
