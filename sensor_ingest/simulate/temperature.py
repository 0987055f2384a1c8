"""The virtual temperature patch: one reading per minute in °C.

Core temperature follows a cosine day rhythm (minimum at the persona's ``nadir_hour``,
around 4 a.m., maximum twelve hours later) plus fever episodes. Each local day is planned
from a generator seeded by (persona seed, day number): whether a fever starts that day, its
onset, rise, plateau, defervescence and peak, and whether the patch is off for a while.
Sensor error is hashed from the timestamp, so ``values_at`` is reproducible however the
time range is split.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from algorithms.sensors import SensorKind, spec_for
from sensor_ingest.simulate.personas import TemperaturePersona
from sensor_ingest.simulate.randomness import day_rng
from sensor_ingest.simulate.sensor import VirtualSensor
from sensor_ingest.simulate.timegrid import (
    HOUR_S,
    day_start,
    local_days,
    local_hour,
)

_PLAN, _NOISE, _JITTER, _MISSED = 11, 12, 13, 14
_SPEC = spec_for(SensorKind.TEMPERATURE)


@dataclass(frozen=True, slots=True)
class FeverEpisode:
    """A fever: rises over ``rise_s``, holds ``plateau_s``, falls over ``fall_s``.

    ``delta_c`` is added to the rhythm at full height; it is chosen so that core
    temperature at the middle of the plateau equals ``peak_c``.
    """

    onset_ts: float
    rise_s: float
    plateau_s: float
    fall_s: float
    peak_c: float
    delta_c: float

    @property
    def plateau_start_ts(self) -> float:
        return self.onset_ts + self.rise_s

    @property
    def plateau_end_ts(self) -> float:
        return self.plateau_start_ts + self.plateau_s

    @property
    def end_ts(self) -> float:
        return self.plateau_end_ts + self.fall_s

    def envelope(self, ts: np.ndarray) -> np.ndarray:
        """0 outside the episode, 1 on the plateau, smoothstep ramps in between."""
        up = np.clip((ts - self.onset_ts) / self.rise_s, 0.0, 1.0)
        down = np.clip((ts - self.plateau_end_ts) / self.fall_s, 0.0, 1.0)
        return _smoothstep(up) * (1.0 - _smoothstep(down))


@dataclass(frozen=True, slots=True)
class TemperatureDay:
    """The plan of one local day."""

    fevers: tuple[FeverEpisode, ...]
    gaps: tuple[tuple[float, float], ...]


def _smoothstep(x: np.ndarray) -> np.ndarray:
    return x * x * (3.0 - 2.0 * x)


def diurnal_c(p: TemperaturePersona, ts: np.ndarray) -> np.ndarray:
    """The persona's well-day core temperature rhythm at ``ts``."""
    phase = 2.0 * np.pi * (local_hour(ts, p.tz_offset_s) - p.nadir_hour) / 24.0
    return p.core_mean_c - p.diurnal_amplitude_c * np.cos(phase)


@lru_cache(maxsize=8192)
def plan_temperature_day(p: TemperaturePersona, day: int) -> TemperatureDay:
    """Plan local ``day`` of persona ``p`` (pure, cached)."""
    rng = day_rng(p.seed, _PLAN, day)
    midnight = day_start(day, p.tz_offset_s)
    has_fever, onset_h = rng.random() < p.fever_prob, rng.uniform(0.0, 24.0)
    rise_h, plateau_h = rng.uniform(*p.fever_rise_h), rng.uniform(*p.fever_plateau_h)
    fall_h, peak = rng.uniform(*p.fever_fall_h), rng.uniform(*p.fever_peak_c)
    fevers: tuple[FeverEpisode, ...] = ()
    if has_fever:
        onset = midnight + onset_h * HOUR_S
        middle = onset + (rise_h + plateau_h / 2) * HOUR_S
        delta = peak - float(diurnal_c(p, np.array([middle]))[0])
        fevers = (
            FeverEpisode(onset, rise_h * HOUR_S, plateau_h * HOUR_S, fall_h * HOUR_S, peak, delta),
        )
    has_gap, gap_h, gap_min = rng.random() < p.dropout_prob, rng.uniform(0, 24), rng.uniform(10, 45)
    gap_start = midnight + gap_h * HOUR_S
    gaps = ((gap_start, gap_start + gap_min * 60),) if has_gap else ()
    return TemperatureDay(fevers, gaps)


class VirtualTemperaturePatch(VirtualSensor):
    """A temperature patch worn by ``persona``: :meth:`values_at` is the reported °C."""

    kind = SensorKind.TEMPERATURE
    value_range = (_SPEC.min_value, _SPEC.max_value)

    streams = (_NOISE, _JITTER, _MISSED)
    persona: TemperaturePersona

    def _plans(self, ts: np.ndarray) -> list[TemperatureDay]:
        """Plans of the days that can affect ``ts`` (a day of look-back for carry-over)."""
        days = local_days(ts, self.persona.tz_offset_s)
        return [
            plan_temperature_day(self.persona, d)
            for d in range(int(days.min()) - 1, int(days.max()) + 1)
        ]

    def core_at(self, ts: np.ndarray) -> np.ndarray:
        """True (noise-free) core temperature in °C at ``ts``."""
        flat = np.asarray(ts, dtype=np.float64).ravel()
        if flat.size == 0:
            return flat.reshape(np.shape(ts))
        fever = np.zeros_like(flat)
        for plan in self._plans(flat):
            for episode in plan.fevers:
                fever = np.maximum(fever, episode.delta_c * episode.envelope(flat))
        return (diurnal_c(self.persona, flat) + fever).reshape(np.shape(ts))

    def _true_reading(self, ts: np.ndarray) -> np.ndarray:
        return self.core_at(ts) - self.persona.skin_offset_c

    def _error_sd(self) -> tuple[float, float]:
        return self.persona.noise_sd_c, self.persona.jitter_sd_c

    def _gaps(self, ts: np.ndarray) -> list[tuple[float, float]]:
        return [gap for plan in self._plans(ts) for gap in plan.gaps]

    def fevers_between(self, start: float, end: float) -> list[FeverEpisode]:
        """Fever episodes with onset in ``[start, end)``, in time order."""
        episodes = [e for plan in self._plans(np.array([start, end])) for e in plan.fevers]
        return sorted((e for e in episodes if start <= e.onset_ts < end), key=lambda e: e.onset_ts)
