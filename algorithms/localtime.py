"""Local time of day for schedules and daily profiles: a fixed UTC offset or an IANA zone.

``tz`` is either an offset in seconds east of UTC (``3600`` for UTC+1) or a zone name
(``"Europe/Paris"``) resolved with the standard library's :mod:`zoneinfo`, so daylight saving
changes inside a window are honoured.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import numpy as np

TimeZone = int | float | str
DAY_S = 86_400
_RESOLUTION_S = 900  # zone transitions fall on quarter hours


@lru_cache(maxsize=256)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _offset_at(zone: ZoneInfo, t: float) -> float:
    off = datetime.fromtimestamp(t, UTC).astimezone(zone).utcoffset()
    return off.total_seconds() if off is not None else 0.0


def utc_offsets_s(ts_s: np.ndarray, tz: TimeZone) -> np.ndarray:
    """UTC offset (seconds) in force at each timestamp."""
    ts = np.asarray(ts_s, dtype=np.float64)
    if not isinstance(tz, str):
        return np.full(ts.shape, float(tz))
    if ts.size == 0:
        return np.empty(ts.shape)
    zone = _zone(tz)
    lo, hi = float(np.min(ts)), float(np.max(ts))
    # Offsets at day boundaries; only days whose ends differ are resolved to quarter hours.
    days = np.arange(np.floor(lo / DAY_S) * DAY_S, hi + DAY_S, DAY_S)
    day_off = np.array([_offset_at(zone, d) for d in days])
    grid, grid_off = days, day_off
    change = np.flatnonzero(np.diff(day_off) != 0)
    if change.size:
        fine = np.concatenate([np.arange(days[i], days[i + 1], _RESOLUTION_S) for i in change])
        fine_off = np.array([_offset_at(zone, t) for t in fine])
        grid = np.concatenate((days, fine))
        grid_off = np.concatenate((day_off, fine_off))
        order = np.argsort(grid, kind="stable")
        grid, grid_off = grid[order], grid_off[order]
    pos = np.searchsorted(grid, ts, side="right") - 1
    return grid_off[np.clip(pos, 0, grid.size - 1)]


def local_seconds(ts_s: np.ndarray, tz: TimeZone) -> np.ndarray:
    """Local wall-clock time as seconds since the epoch (UTC timestamp plus its offset)."""
    ts = np.asarray(ts_s, dtype=np.float64)
    return np.asarray(ts + utc_offsets_s(ts, tz))


def local_day_and_second(ts_s: np.ndarray, tz: TimeZone) -> tuple[np.ndarray, np.ndarray]:
    """Local day number (days since 1970-01-01 local) and second of that day."""
    loc = local_seconds(ts_s, tz)
    day = np.floor(loc / DAY_S)
    return day.astype(np.int64), loc - day * DAY_S


def local_weekday_and_minute(ts_s: np.ndarray, tz: TimeZone) -> tuple[np.ndarray, np.ndarray]:
    """Local weekday (0 = Monday) and minute of the day."""
    day, sec = local_day_and_second(ts_s, tz)
    # 1970-01-01 was a Thursday (weekday 3).
    return (day + 3) % 7, np.floor(sec / 60.0).astype(np.int64)
