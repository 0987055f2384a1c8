"""Fingerstick calibration: a slope and offset that map sensor readings to reference values."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

MIN_SLOPE = 0.7
MAX_SLOPE = 1.3
MIN_SPREAD_MGDL = 40.0  # references closer than this cannot tell slope from offset


@dataclass(frozen=True, slots=True)
class Calibration:
    """``calibrated = slope * sensor + offset_mgdl``."""

    slope: float = 1.0
    offset_mgdl: float = 0.0

    def apply(self, mgdl: np.ndarray) -> np.ndarray:
        return self.slope * np.asarray(mgdl, dtype=np.float64) + self.offset_mgdl

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, float]) -> Calibration:
        return cls(float(d["slope"]), float(d["offset_mgdl"]))


def fit_calibration(sensor_mgdl: np.ndarray, reference_mgdl: np.ndarray) -> Calibration:
    """Least-squares slope and offset from paired sensor and fingerstick values.

    With one pair, or pairs spanning less than ``MIN_SPREAD_MGDL``, only an offset is fitted;
    the slope is clamped to ``[0.7, 1.3]`` (a sensor further off than that needs replacing,
    not calibrating) and the offset refitted for the clamped slope.
    """
    s = np.asarray(sensor_mgdl, dtype=np.float64)
    r = np.asarray(reference_mgdl, dtype=np.float64)
    if s.size == 0 or s.size != r.size:
        raise ValueError("need matching, non-empty sensor and reference values")
    if s.size < 2 or np.ptp(s) < MIN_SPREAD_MGDL:
        return Calibration(1.0, float(np.mean(r - s)))
    slope = float(np.polyfit(s, r, 1)[0])
    slope = min(MAX_SLOPE, max(MIN_SLOPE, slope))
    return Calibration(slope, float(np.mean(r - slope * s)))
