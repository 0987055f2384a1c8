"""Fleets of personas: varied, reproducible, stable as the fleet grows."""

from __future__ import annotations

from algorithms.sensors import SensorKind
from sensor_ingest.simulate import (
    GlucosePersona,
    TemperaturePersona,
    VirtualCGM,
    VirtualTemperaturePatch,
    make_fleet,
    sensor_for,
)


def test_glucose_fleet_is_varied() -> None:
    fleet = make_fleet(9, "glucose", seed=1)
    assert all(isinstance(p, GlucosePersona) for p in fleet)
    assert {p.name.split("-")[0] for p in fleet} == {"steady", "type2", "type1"}
    assert len({p.seed for p in fleet}) == 9
    assert len({round(p.baseline_mgdl, 3) for p in fleet}) == 9
    assert len({p.phase_s for p in fleet}) > 1
    assert any(p.nocturnal_low_prob > 0 for p in fleet)
    assert any(p.nocturnal_low_prob == 0 for p in fleet)


def test_temperature_fleet_is_varied() -> None:
    fleet = make_fleet(6, "temperature", seed=1)
    assert all(isinstance(p, TemperaturePersona) for p in fleet)
    assert {p.name.split("-")[0] for p in fleet} == {"well", "infection"}
    assert len({round(p.core_mean_c, 4) for p in fleet}) == 6
    assert max(p.fever_prob for p in fleet) > 0.1 > min(p.fever_prob for p in fleet)
    assert all(p.skin_offset_c == 0.5 for p in fleet)  # axilla, as the pipeline assumes


def test_mixed_fleet_alternates_kinds_with_variety_in_each() -> None:
    fleet = make_fleet(8, "mixed", seed=2)
    assert [p.kind for p in fleet] == [SensorKind.GLUCOSE, SensorKind.TEMPERATURE] * 4
    assert len({p.name.split("-")[0] for p in fleet[0::2]}) == 3
    assert len({p.name.split("-")[0] for p in fleet[1::2]}) == 2
    assert isinstance(sensor_for(fleet[0]), VirtualCGM)
    assert isinstance(sensor_for(fleet[1]), VirtualTemperaturePatch)


def test_fleet_is_reproducible_and_stable_as_it_grows() -> None:
    assert make_fleet(5, "glucose", seed=3) == make_fleet(5, "glucose", seed=3)
    assert make_fleet(8, "glucose", seed=3)[:5] == make_fleet(5, "glucose", seed=3)
    other = make_fleet(5, "glucose", seed=4)
    assert all(a != b for a, b in zip(make_fleet(5, "glucose", seed=3), other, strict=True))


def test_fleet_honours_time_zone() -> None:
    fleet = make_fleet(3, "mixed", seed=5, tz_offset_s=7200)
    assert all(p.tz_offset_s == 7200 for p in fleet)
