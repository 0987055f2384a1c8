"""What every virtual sensor offers: a reading schedule and values as a function of time."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from algorithms.sensors import SensorKind
from sensor_ingest.simulate.personas import GlucosePersona, TemperaturePersona
from sensor_ingest.simulate.randomness import stream_key
from sensor_ingest.simulate.timegrid import ReadingGrid


class VirtualSensor(ABC):
    """A simulated sensor: pure, clock-free, deterministic in (persona, timestamp)."""

    kind: SensorKind
    grid: ReadingGrid

    # Random-stream ids (noise, timing jitter, missed readings), distinct per sensor kind.
    streams: tuple[int, int, int]

    def __init__(self, persona: GlucosePersona | TemperaturePersona) -> None:
        self.persona = persona
        self.grid = ReadingGrid(persona.interval_s, persona.phase_s % persona.interval_s)
        noise, jitter, missed = self.streams
        self._noise_key = stream_key(persona.seed, noise)
        self._jitter_key = stream_key(persona.seed, jitter)
        self._missed_key = stream_key(persona.seed, missed)

    @abstractmethod
    def values_at(self, ts: np.ndarray) -> np.ndarray:
        """Reported values at epoch seconds ``ts`` (any shape); NaN where a reading is missing."""

    @property
    def interval_s(self) -> int:
        return self.grid.interval_s

    def readings_between(self, start: float, end: float) -> tuple[np.ndarray, np.ndarray]:
        """The readings the sensor reports at schedule times in ``[start, end)``.

        Returns ``(ts, values)``, ascending, without the missing ones.
        """
        ts = self.grid.times_between(start, end)
        values = self.values_at(ts)
        keep = np.isfinite(values)
        return ts[keep], values[keep]


def gaps_mask(ts: np.ndarray, gaps: list[tuple[float, float]]) -> np.ndarray:
    """True where ``ts`` falls inside any ``[start, end)`` gap."""
    mask = np.zeros(ts.shape, dtype=bool)
    for start, end in gaps:
        mask |= (ts >= start) & (ts < end)
    return mask
