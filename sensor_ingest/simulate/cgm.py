"""The virtual continuous glucose monitor: a person's day in mg/dL, one reading per 5 min.

The curve is a function of absolute time. Each local day is planned from a generator
seeded by (persona seed, day number): a drift of the baseline, the dawn rise, meals, a
snack, exercise, maybe a nocturnal low and a signal-loss gap. An event's effect is a smooth
bump — a sine-squared rise to its extreme ``peak_s`` after the start, then a Gaussian
decay — so events of the previous evening carry over midnight. Sensor error is hashed from
the timestamp, so ``values_at`` gives the same answer however the time range is split.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from algorithms.sensors import SensorKind
from sensor_ingest.simulate.personas import GlucosePersona
from sensor_ingest.simulate.randomness import day_rng
from sensor_ingest.simulate.sensor import VirtualSensor
from sensor_ingest.simulate.timegrid import DAY_S, HOUR_S, day_start, local_days

CGM_MIN_MGDL = 40.0
CGM_MAX_MGDL = 400.0
"""A CGM reports "LO"/"HI" outside this range; the simulator clips to it."""

_PLAN, _NOISE, _JITTER, _MISSED = 1, 2, 3, 4
_TENTH = float(np.sqrt(2.0 * np.log(10.0)))  # decay time / Gaussian sd at 10 % of the extreme
_CUTOFF_SD = 4.0
_DAWN_SD_H = 1.2
_CUTOFF_DAWN_SD = 4.5  # 4.5 x 1.2 h < 6 h, the earliest dawn centre


@dataclass(frozen=True, slots=True)
class GlucoseEvent:
    """Something that moves glucose: ``amplitude_mgdl`` (signed) reached ``peak_s`` after start."""

    kind: str  # "meal", "snack", "exercise", "nocturnal_low"
    start_ts: float
    amplitude_mgdl: float
    peak_s: float
    decay_sd_s: float

    @property
    def end_ts(self) -> float:
        """When the effect has become negligible."""
        return self.start_ts + self.peak_s + _CUTOFF_SD * self.decay_sd_s

    def effect(self, ts: np.ndarray) -> np.ndarray:
        """This event's contribution (mg/dL) at ``ts``."""
        tau = ts - self.start_ts
        out = np.zeros_like(ts)
        rising = (tau > 0) & (tau <= self.peak_s)
        out[rising] = np.sin(0.5 * np.pi * tau[rising] / self.peak_s) ** 2
        falling = (tau > self.peak_s) & (ts < self.end_ts)
        out[falling] = np.exp(-0.5 * ((tau[falling] - self.peak_s) / self.decay_sd_s) ** 2)
        return self.amplitude_mgdl * out


@dataclass(frozen=True, slots=True)
class GlucoseDay:
    """The plan of one local day."""

    offset_mgdl: float
    dawn_mgdl: float
    dawn_center_ts: float
    events: tuple[GlucoseEvent, ...]
    gaps: tuple[tuple[float, float], ...]


@lru_cache(maxsize=8192)
def plan_glucose_day(p: GlucosePersona, day: int) -> GlucoseDay:
    """Plan local ``day`` of persona ``p`` (pure, cached)."""
    rng = day_rng(p.seed, _PLAN, day)
    midnight = day_start(day, p.tz_offset_s)

    def at(hour: float) -> float:
        return midnight + hour * HOUR_S

    offset = float(rng.normal(0.0, p.daily_drift_mgdl))
    dawn = p.dawn_rise_mgdl * float(rng.uniform(0.6, 1.3))
    dawn_center = at(float(rng.uniform(6.0, 7.0)))
    events: list[GlucoseEvent] = []
    for hour in p.meal_hours:
        skip, jitter = rng.random(), rng.normal(0.0, p.meal_jitter_h)
        rise, peak_min = rng.uniform(*p.meal_rise_mgdl), rng.uniform(*p.meal_peak_min)
        decay_h = rng.uniform(*p.meal_decay_h)
        if skip >= p.meal_skip_prob:
            events.append(
                GlucoseEvent(
                    "meal", at(hour + jitter), rise, peak_min * 60, decay_h * HOUR_S / _TENTH
                )
            )
    has_snack, afternoon = rng.random() < p.snack_prob, rng.random() < 0.5
    snack_hour = rng.uniform(15.0, 16.5) if afternoon else rng.uniform(21.0, 22.5)
    snack = (rng.uniform(*p.snack_rise_mgdl), rng.uniform(30.0, 45.0), rng.uniform(1.0, 1.5))
    if has_snack:
        events.append(
            GlucoseEvent(
                "snack", at(snack_hour), snack[0], snack[1] * 60, snack[2] * HOUR_S / _TENTH
            )
        )
    has_exercise, ex_hour = rng.random() < p.exercise_prob, p.exercise_hour + rng.normal(0, 0.75)
    ex_min, dip, recovery_h = (
        rng.uniform(30, 75),
        rng.uniform(*p.exercise_dip_mgdl),
        rng.uniform(1, 2),
    )
    if has_exercise:
        events.append(
            GlucoseEvent("exercise", at(ex_hour), -dip, ex_min * 60, recovery_h * HOUR_S / _TENTH)
        )
    has_low, low_hour = rng.random() < p.nocturnal_low_prob, rng.uniform(1.0, 3.5)
    nadir = rng.uniform(*p.nocturnal_low_mgdl)
    fall_min, recovery_h = rng.uniform(45.0, 90.0), rng.uniform(0.5, 1.0)
    if has_low:
        depth = max(0.0, p.baseline_mgdl + offset - nadir)
        events.append(
            GlucoseEvent(
                "nocturnal_low", at(low_hour), -depth, fall_min * 60, recovery_h * HOUR_S / _TENTH
            )
        )
    has_gap, gap_start, gap_min = (
        rng.random() < p.dropout_prob,
        rng.uniform(0, 24),
        rng.uniform(15, 120),
    )
    gaps = ((at(gap_start), at(gap_start) + gap_min * 60),) if has_gap else ()
    return GlucoseDay(offset, dawn, dawn_center, tuple(events), gaps)


def _dawn(plan: GlucoseDay, ts: np.ndarray) -> np.ndarray:
    """The dawn rise: a Gaussian around the day's dawn centre, cut off so that it stays
    inside its own day."""
    z = (ts - plan.dawn_center_ts) / (_DAWN_SD_H * HOUR_S)
    return np.where(np.abs(z) < _CUTOFF_DAWN_SD, plan.dawn_mgdl * np.exp(-0.5 * z * z), 0.0)


class VirtualCGM(VirtualSensor):
    """A CGM worn by ``persona``: :meth:`values_at` is the reported mg/dL (NaN when missing)."""

    kind = SensorKind.GLUCOSE
    value_range = (CGM_MIN_MGDL, CGM_MAX_MGDL)

    streams = (_NOISE, _JITTER, _MISSED)
    persona: GlucosePersona

    def _days(self, ts: np.ndarray) -> range:
        """Local days whose plans can affect ``ts`` (one day of look-back for carry-over)."""
        days = local_days(ts, self.persona.tz_offset_s)
        return range(int(days.min()) - 1, int(days.max()) + 2)

    def level_at(self, ts: np.ndarray) -> np.ndarray:
        """True (noise-free, unclipped) glucose in mg/dL at ``ts``."""
        p = self.persona
        flat = np.asarray(ts, dtype=np.float64).ravel()
        if flat.size == 0:
            return flat.reshape(np.shape(ts))
        days = self._days(flat)
        plans = [plan_glucose_day(p, d) for d in days]
        # Day-to-day drift: cosine interpolation between offsets anchored at local noon.
        offsets = np.array([plan.offset_mgdl for plan in plans])
        since_noon = (flat + p.tz_offset_s - DAY_S / 2) / DAY_S
        anchor = np.floor(since_noon).astype(np.int64)
        i = anchor - days.start
        u = since_noon - anchor
        out = (
            p.baseline_mgdl
            + offsets[i]
            + (offsets[i + 1] - offsets[i]) * (1 - np.cos(np.pi * u)) / 2
        )
        for plan in plans[:-1]:
            out += _dawn(plan, flat)
            for event in plan.events:
                out += event.effect(flat)
        return out.reshape(np.shape(ts))

    def _true_reading(self, ts: np.ndarray) -> np.ndarray:
        return self.level_at(ts)

    def _error_sd(self) -> tuple[float, float]:
        return self.persona.noise_sd_mgdl, self.persona.jitter_sd_mgdl

    def _gaps(self, ts: np.ndarray) -> list[tuple[float, float]]:
        return [gap for d in self._days(ts) for gap in plan_glucose_day(self.persona, d).gaps]

    def events_between(self, start: float, end: float) -> list[GlucoseEvent]:
        """Planned events starting in ``[start, end)``, in time order."""
        days = self._days(np.array([start, end]))
        events = [e for d in days for e in plan_glucose_day(self.persona, d).events]
        return sorted((e for e in events if start <= e.start_ts < end), key=lambda e: e.start_ts)
