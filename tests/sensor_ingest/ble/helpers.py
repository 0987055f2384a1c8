"""Shared by the gateway tests here and in tests/e2e: sensor addresses, personas without
random gaps, fast sensor clocks, and polling until a condition holds."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sensor_ingest.simulate.clock import SimulatedClock
from sensor_ingest.simulate.personas import GlucosePersona, TemperaturePersona

CGM_ADDRESS = "F0:F1:F2:F3:F4:F5"
THERMOMETER_ADDRESS = "F0:F1:F2:F3:F4:F6"
STEADY = GlucosePersona("steady", 7, missed_reading_prob=0.0, dropout_prob=0.0)
WARM = TemperaturePersona("warm", 8, missed_reading_prob=0.0, dropout_prob=0.0)


@dataclass
class FastClock:
    """Sensor time starting ``behind_s`` in the past and running ``speed`` x real time."""

    clock: SimulatedClock

    def __call__(self) -> float:
        return self.clock.now(time.time())


def fast_clock(behind_s: float, speed: float) -> Callable[[], float]:
    real = time.time()
    return FastClock(SimulatedClock(real, real - behind_s, speed))


async def eventually(check: Callable[[], bool], timeout_s: float = 30.0) -> None:
    """Wait until ``check()`` holds, polling; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


@asynccontextmanager
async def running(
    run: Callable[[asyncio.Event], Awaitable[object]], timeout_s: float = 15.0
) -> AsyncIterator[asyncio.Event]:
    """``run(stop)`` as a task for the block; then ``stop`` is set and the task awaited."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(stop))
    try:
        yield stop
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout_s)
