"""Checks a batch of readings against what a sensor can physically report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from algorithms.sensors import SensorSpec

MAX_FUTURE_S = 5 * 60
# The earliest time Vigil accepts a reading or event at (2000-01-01T00:00:00Z). History
# imports reach years back, but no body-worn sensor data predates it: an earlier time is a
# client's bug (a zeroed clock), and refusing it bounds how far back storage must reach.
EARLIEST_TS_S = 946_684_800


@dataclass(frozen=True, slots=True)
class Problem:
    """One rejected item: its index in the list, the field and why (``None``: the whole
    list, or the whole item); ``path`` goes on below the field (an item of a list field)."""

    index: int | None
    field: str | None
    message: str
    path: tuple[int | str, ...] = ()

    def loc(self) -> list[str | int]:
        """Where the problem is, below the list's own location."""
        return [part for part in (self.index, self.field) if part is not None] + list(self.path)


def acceptable(
    ts_s: np.ndarray,
    values: np.ndarray,
    min_value: np.ndarray | float,
    max_value: np.ndarray | float,
    now_s: float,
    *,
    max_future_s: float = MAX_FUTURE_S,
) -> np.ndarray:
    """Per reading, whether :func:`validate_readings` finds nothing wrong with it; the
    bounds may differ per reading, so that many devices' batches are checked at once."""
    ts_s = np.asarray(ts_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    good_value = np.isfinite(values) & (values >= min_value) & (values <= max_value)
    good: np.ndarray = good_value & (ts_s >= EARLIEST_TS_S) & (ts_s <= now_s + max_future_s)
    return good


def validate_readings(
    ts_s: np.ndarray,
    values: np.ndarray,
    spec: SensorSpec,
    now_s: float,
    *,
    max_future_s: float = MAX_FUTURE_S,
) -> list[Problem]:
    """Every problem in the batch (empty when all readings are acceptable)."""
    ts_s = np.asarray(ts_s, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    problems: list[Problem] = []
    bad_value = ~np.isfinite(values) | (values < spec.min_value) | (values > spec.max_value)
    for i in np.flatnonzero(bad_value):
        problems.append(
            Problem(
                int(i),
                "value",
                f"{values[i]:g} {spec.unit} is outside the {spec.kind} sensor range "
                f"{spec.min_value:g}-{spec.max_value:g} {spec.unit}",
            )
        )
    for i in np.flatnonzero(ts_s < EARLIEST_TS_S):
        problems.append(Problem(int(i), "ts", "timestamp is before 2000-01-01T00:00:00Z"))
    for i in np.flatnonzero(ts_s > now_s + max_future_s):
        problems.append(
            Problem(
                int(i),
                "ts",
                f"timestamp is {ts_s[i] - now_s:.0f} s in the future "
                f"(at most {max_future_s:.0f} s allowed)",
            )
        )
    problems.sort(key=lambda p: (p.index, p.field))
    return problems
