"""What every virtual sensor offers: a reading schedule and values as a function of time."""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from algorithms.sensors import SensorKind
from sensor_ingest.simulate.personas import GlucosePersona, TemperaturePersona
from sensor_ingest.simulate.randomness import (
    hashed_normal,
    hashed_uniform,
    smooth_noise,
    stream_key,
)
from sensor_ingest.simulate.timegrid import ReadingGrid


class VirtualSensor(ABC):
    """A simulated sensor: pure, clock-free, deterministic in (persona, timestamp).

    A reported value is the sensor's noise-free reading plus autocorrelated noise and
    per-reading jitter, clipped to ``value_range``; readings inside a planned gap, or missed
    at random, are NaN. Subclasses say what the noise-free reading, the error SDs and the
    gaps are.
    """

    kind: SensorKind
    grid: ReadingGrid
    value_range: tuple[float, float]

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
    def _true_reading(self, ts: np.ndarray) -> np.ndarray:
        """What a perfect sensor would report at the (flat, non-empty) times ``ts``."""

    @abstractmethod
    def _error_sd(self) -> tuple[float, float]:
        """SDs of the autocorrelated noise and of the independent per-reading jitter."""

    @abstractmethod
    def _gaps(self, ts: np.ndarray) -> list[tuple[float, float]]:
        """Planned ``[start, end)`` gaps without readings around the (flat) times ``ts``."""

    def values_at(self, ts: np.ndarray) -> np.ndarray:
        """Reported values at epoch seconds ``ts`` (any shape); NaN where a reading is missing."""
        p = self.persona
        flat = np.asarray(ts, dtype=np.float64).ravel()
        if flat.size == 0:
            return flat.reshape(np.shape(ts))
        slot = self.grid.slots(flat)
        noise_sd, jitter_sd = self._error_sd()
        noise = noise_sd * smooth_noise(
            self._noise_key, flat, float(p.interval_s), p.noise_tau_min * 60
        )
        noise += jitter_sd * hashed_normal(self._jitter_key, slot)
        values = np.clip(self._true_reading(flat) + noise, *self.value_range)
        missing = gaps_mask(flat, self._gaps(flat)) | (
            hashed_uniform(self._missed_key, slot) < p.missed_reading_prob
        )
        values[missing] = np.nan
        return values.reshape(np.shape(ts))

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
