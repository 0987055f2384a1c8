"""What each sensor kind measures: unit, physical range, nominal interval, trend thresholds.

Glucose is held in mg/dL and temperature in degrees Celsius everywhere inside Vigil;
conversion to mmol/L happens at the edge (by :data:`MGDL_PER_MMOLL`: imports, Nightscout).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

MGDL_PER_MMOLL = 18.016


class SensorKind(StrEnum):
    GLUCOSE = "glucose"
    TEMPERATURE = "temperature"


@dataclass(frozen=True, slots=True)
class DirectionThresholds:
    """Absolute rate limits (unit per minute) between the trend arrows.

    ``|rate| < flat`` is Flat, ``< single`` is FortyFive, ``<= double`` is Single, above is Double.
    """

    flat: float
    single: float
    double: float

    def __post_init__(self) -> None:
        if not 0 <= self.flat <= self.single <= self.double:
            raise ValueError(f"trend limits must be ordered, 0 <= flat <= single <= double: {self}")


@dataclass(frozen=True, slots=True)
class SensorSpec:
    kind: SensorKind
    unit: str
    min_value: float
    max_value: float
    default_interval_s: int
    thresholds: DirectionThresholds


SPECS: dict[SensorKind, SensorSpec] = {
    # Dexcom/Nightscout arrows: Flat < 1, FortyFive 1-2, Single 2-3, Double > 3 mg/dL/min.
    SensorKind.GLUCOSE: SensorSpec(
        kind=SensorKind.GLUCOSE,
        unit="mg/dL",
        min_value=20.0,
        max_value=600.0,
        default_interval_s=300,
        thresholds=DirectionThresholds(flat=1.0, single=2.0, double=3.0),
    ),
    # Core temperature rarely moves faster than a few tenths of a degree per ten minutes;
    # the arrows scale that down: Flat < 0.02, FortyFive 0.02-0.05, Single 0.05-0.1 C/min.
    SensorKind.TEMPERATURE: SensorSpec(
        kind=SensorKind.TEMPERATURE,
        unit="°C",
        min_value=25.0,
        max_value=45.0,
        default_interval_s=60,
        thresholds=DirectionThresholds(flat=0.02, single=0.05, double=0.1),
    ),
}


def spec_for(kind: SensorKind | str) -> SensorSpec:
    return SPECS[SensorKind(kind)]
