"""A varied population of virtual wearers, and the sensor that goes with each persona."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np

from algorithms.sensors import SensorKind
from algorithms.temperature import SITE_OFFSET_C, BodySite
from sensor_ingest.simulate.cgm import VirtualCGM
from sensor_ingest.simulate.personas import GlucosePersona, Persona, TemperaturePersona
from sensor_ingest.simulate.randomness import stream_key
from sensor_ingest.simulate.sensor import VirtualSensor
from sensor_ingest.simulate.temperature import VirtualTemperaturePatch

FleetKind = Literal["glucose", "temperature", "mixed"]

GLUCOSE_ARCHETYPES = ("steady", "type2", "type1")
TEMPERATURE_ARCHETYPES = ("well", "infection")
AXILLA_SKIN_OFFSET_C = SITE_OFFSET_C[BodySite.AXILLA]
"""Fleet patches sit in the armpit and report skin temperature this far below core, the
default site offset the temperature pipeline adds back (``algorithms.temperature``)."""


def _glucose_persona(index: int, variant: int, seed: int, tz_offset_s: int) -> GlucosePersona:
    persona_seed = stream_key(seed, 1_000_000 + index)
    rng = np.random.default_rng(persona_seed)
    archetype = GLUCOSE_ARCHETYPES[variant % len(GLUCOSE_ARCHETYPES)]
    common: dict[str, Any] = {
        "meal_hours": (rng.uniform(6.5, 8.5), rng.uniform(12.0, 13.5), rng.uniform(18.0, 20.5)),
        "meal_jitter_h": rng.uniform(0.25, 0.75),
        "snack_prob": rng.uniform(0.1, 0.5),
        "exercise_hour": rng.uniform(6.5, 8.0) if rng.random() < 0.3 else rng.uniform(17.0, 19.5),
        "noise_sd_mgdl": rng.uniform(2.0, 4.0),
        "noise_tau_min": rng.uniform(10.0, 20.0),
        "dropout_prob": rng.uniform(0.05, 0.3),
        "missed_reading_prob": rng.uniform(0.002, 0.02),
        "phase_s": int(rng.integers(0, 300)),
        "tz_offset_s": tz_offset_s,
    }
    if archetype == "steady":
        specific: dict[str, Any] = {
            "baseline_mgdl": rng.uniform(98.0, 110.0),
            "daily_drift_mgdl": rng.uniform(3.0, 6.0),
            "meal_rise_mgdl": (40.0, rng.uniform(60.0, 80.0)),
            "dawn_rise_mgdl": rng.uniform(5.0, 15.0),
            "exercise_prob": rng.uniform(0.3, 0.7),
        }
    elif archetype == "type2":
        specific = {
            "baseline_mgdl": rng.uniform(118.0, 135.0),
            "daily_drift_mgdl": rng.uniform(6.0, 12.0),
            "meal_rise_mgdl": (rng.uniform(55.0, 70.0), rng.uniform(90.0, 110.0)),
            "meal_peak_min": (55.0, 75.0),
            "dawn_rise_mgdl": rng.uniform(20.0, 30.0),
            "exercise_prob": rng.uniform(0.1, 0.4),
        }
    else:  # type1
        specific = {
            "baseline_mgdl": rng.uniform(110.0, 130.0),
            "daily_drift_mgdl": rng.uniform(10.0, 18.0),
            "meal_rise_mgdl": (rng.uniform(50.0, 65.0), rng.uniform(95.0, 120.0)),
            "dawn_rise_mgdl": rng.uniform(10.0, 25.0),
            "exercise_prob": rng.uniform(0.3, 0.6),
            "exercise_dip_mgdl": (25.0, 55.0),
            "nocturnal_low_prob": rng.uniform(0.15, 0.3),
        }
    return GlucosePersona(name=f"{archetype}-{index}", seed=persona_seed, **common, **specific)


def _temperature_persona(
    index: int, variant: int, seed: int, tz_offset_s: int
) -> TemperaturePersona:
    persona_seed = stream_key(seed, 2_000_000 + index)
    rng = np.random.default_rng(persona_seed)
    archetype = TEMPERATURE_ARCHETYPES[variant % len(TEMPERATURE_ARCHETYPES)]
    fever_prob = rng.uniform(0.0, 0.03) if archetype == "well" else rng.uniform(0.15, 0.35)
    return TemperaturePersona(
        name=f"{archetype}-{index}",
        seed=persona_seed,
        core_mean_c=rng.uniform(36.5, 37.0),
        diurnal_amplitude_c=rng.uniform(0.3, 0.5),
        nadir_hour=rng.uniform(3.5, 5.0),
        skin_offset_c=AXILLA_SKIN_OFFSET_C,
        fever_prob=fever_prob,
        noise_sd_c=rng.uniform(0.03, 0.07),
        noise_tau_min=rng.uniform(5.0, 15.0),
        dropout_prob=rng.uniform(0.05, 0.3),
        missed_reading_prob=rng.uniform(0.001, 0.01),
        phase_s=int(rng.integers(0, 60)),
        tz_offset_s=tz_offset_s,
    )


def fleet_kind_of(index: int, kind: FleetKind | SensorKind) -> SensorKind:
    """The sensor kind of device ``index`` in a fleet of ``kind`` (mixed alternates, CGM first)."""
    if kind == "mixed":
        return SensorKind.GLUCOSE if index % 2 == 0 else SensorKind.TEMPERATURE
    return SensorKind(kind)


def make_fleet(
    n: int, kind: FleetKind | SensorKind, seed: int, *, tz_offset_s: int = 0
) -> list[Persona]:
    """``n`` varied personas, reproducible from ``seed``.

    Persona ``i`` depends only on (seed, i, fleet kind), so growing the fleet keeps the
    existing wearers. Archetypes cycle with the index (CGM: steady, type 2, type 1 with
    nocturnal lows; temperature: well, infection-prone) and parameters vary within each.
    """
    personas: list[Persona] = []
    for i in range(n):
        sensor_kind = fleet_kind_of(i, kind)
        variant = i // 2 if kind == "mixed" else i  # position among wearers of this kind
        if sensor_kind is SensorKind.GLUCOSE:
            personas.append(_glucose_persona(i, variant, seed, tz_offset_s))
        else:
            personas.append(_temperature_persona(i, variant, seed, tz_offset_s))
    return personas


def sensor_for(persona: Persona) -> VirtualSensor:
    """The virtual sensor worn by ``persona``."""
    if isinstance(persona, GlucosePersona):
        return VirtualCGM(persona)
    return VirtualTemperaturePatch(persona)
