"""Who wears a virtual sensor: the parameters of a person's day, as frozen dataclasses.

A persona fixes everything that makes one simulated wearer differ from another — baseline,
meal habits, fever proneness, noise, time zone — plus the ``seed`` from which every day of
that person is planned. Two sensors built from equal personas report identical values.
Ranges given as ``(low, high)`` tuples are sampled uniformly per event.
"""

from __future__ import annotations

from dataclasses import dataclass

from algorithms.sensors import SensorKind


@dataclass(frozen=True, slots=True)
class GlucosePersona:
    """A CGM wearer. Glucose in mg/dL, durations in the unit their name says."""

    name: str
    seed: int
    baseline_mgdl: float = 110.0
    """Fasting level the curve returns to between meals."""
    daily_drift_mgdl: float = 8.0
    """Standard deviation of a slow day-to-day shift of the baseline."""
    meal_hours: tuple[float, ...] = (7.5, 12.5, 19.0)
    """Usual local meal times (hours)."""
    meal_jitter_h: float = 0.5
    meal_skip_prob: float = 0.05
    meal_rise_mgdl: tuple[float, float] = (40.0, 90.0)
    meal_peak_min: tuple[float, float] = (45.0, 75.0)
    """Minutes from the start of a meal to its glucose peak."""
    meal_decay_h: tuple[float, float] = (2.0, 3.0)
    """Hours from the peak until the rise has (almost) gone."""
    snack_prob: float = 0.3
    snack_rise_mgdl: tuple[float, float] = (15.0, 35.0)
    exercise_prob: float = 0.4
    exercise_hour: float = 18.0
    exercise_dip_mgdl: tuple[float, float] = (15.0, 45.0)
    dawn_rise_mgdl: float = 15.0
    """Early-morning rise (dawn phenomenon), peaking around 6-7 a.m."""
    nocturnal_low_prob: float = 0.0
    """Chance per night of a hypoglycaemic dip between 1 and 4 a.m."""
    nocturnal_low_mgdl: tuple[float, float] = (50.0, 65.0)
    """Nadir reached by a nocturnal low."""
    noise_sd_mgdl: float = 3.0
    """Autocorrelated sensor error."""
    noise_tau_min: float = 15.0
    jitter_sd_mgdl: float = 1.0
    """Independent per-reading error."""
    dropout_prob: float = 0.2
    """Chance per day of a signal-loss gap (15-120 min without readings)."""
    missed_reading_prob: float = 0.01
    """Chance that any single reading is missing."""
    tz_offset_s: int = 0
    """Offset of the wearer's local time from UTC; meals follow local time."""
    phase_s: int = 0
    """Offset of the reading schedule within the interval."""
    interval_s: int = 300

    @property
    def kind(self) -> SensorKind:
        return SensorKind.GLUCOSE


@dataclass(frozen=True, slots=True)
class TemperaturePersona:
    """A temperature-patch wearer. Temperatures in °C."""

    name: str
    seed: int
    core_mean_c: float = 36.8
    """Mean core temperature over the day when well."""
    diurnal_amplitude_c: float = 0.4
    """Half the daily swing; the minimum is at ``nadir_hour``, the maximum 12 h later."""
    nadir_hour: float = 4.0
    skin_offset_c: float = 0.0
    """How far below core the patch reads (0 for a core-estimating patch)."""
    fever_prob: float = 0.05
    """Chance per day that a fever episode starts."""
    fever_peak_c: tuple[float, float] = (38.5, 40.0)
    fever_rise_h: tuple[float, float] = (1.0, 2.0)
    fever_plateau_h: tuple[float, float] = (3.0, 12.0)
    fever_fall_h: tuple[float, float] = (1.0, 3.0)
    noise_sd_c: float = 0.05
    """Autocorrelated sensor error."""
    noise_tau_min: float = 10.0
    jitter_sd_c: float = 0.02
    """Independent per-reading error."""
    dropout_prob: float = 0.15
    """Chance per day of a gap (patch off, 10-45 min)."""
    missed_reading_prob: float = 0.005
    tz_offset_s: int = 0
    phase_s: int = 0
    interval_s: int = 60

    @property
    def kind(self) -> SensorKind:
        return SensorKind.TEMPERATURE


Persona = GlucosePersona | TemperaturePersona
