"""Glucose statistics of the 2019 international consensus and the Ambulatory Glucose Profile.

Definitions follow the iglu R package (Broll et al. 2021): percentages are shares of
readings; ranges are inclusive at both bounds (``70 <= g <= 180`` is in range), "below" and
"above" are strict (``g < 70``, ``g > 180``); SD is the sample SD (n - 1) and CV = SD / mean;
GMI (%) = 3.31 + 0.02392 x mean mg/dL; quantiles interpolate linearly (R type 7). Readings are
de-duplicated by timestamp first, so the order and repetition of readings never matter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, fields

import numpy as np

from algorithms.episodes import Episode, continuing_gap_s, find_episodes
from algorithms.localtime import DAY_S, TimeZone, local_day_and_second, local_seconds
from algorithms.series import clean_series, clean_window, data_sufficiency, segment_ids
from algorithms.variability import Variability, variability_local

AGP_PERCENTILES = (5.0, 25.0, 50.0, 75.0, 95.0)
# Mutually exclusive bands used for time-in-ranges; together they cover every reading.
VERY_LOW_MGDL = 54.0
LOW_MGDL = 70.0
HIGH_MGDL = 180.0
VERY_HIGH_MGDL = 250.0
TIGHT_HIGH_MGDL = 140.0


def gmi_percent(mean_mgdl: float) -> float:
    """Glucose management indicator (%), Bergenstal et al. 2018."""
    return 3.31 + 0.02392 * mean_mgdl


@dataclass(frozen=True, slots=True)
class RangePercents:
    """Share of readings (%) per consensus band; the first five sum to 100."""

    below_54_pct: float  # g < 54
    from_54_below_70_pct: float  # 54 <= g < 70
    in_70_180_pct: float  # 70 <= g <= 180
    above_180_to_250_pct: float  # 180 < g <= 250
    above_250_pct: float  # g > 250
    below_70_pct: float  # g < 70 (TBR)
    above_180_pct: float  # g > 180 (TAR)
    in_70_140_pct: float  # 70 <= g <= 140 (time in tight range)


@dataclass(frozen=True, slots=True)
class GlucoseStats:
    start_s: float
    end_s: float
    interval_s: float
    readings: int
    expected_readings: int
    data_sufficiency_pct: float
    mean_mgdl: float
    sd_mgdl: float
    cv_pct: float
    gmi_pct: float
    min_mgdl: float
    max_mgdl: float
    ranges: RangePercents
    hypo_episodes_below_54: tuple[Episode, ...]
    hypo_episodes_below_70: tuple[Episode, ...]
    hyper_episodes_above_180: tuple[Episode, ...]
    hyper_episodes_above_250: tuple[Episode, ...]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def range_percents(mgdl: np.ndarray) -> RangePercents:
    g = np.asarray(mgdl, dtype=np.float64)
    n = g.size
    if n == 0:
        nan = float("nan")
        return RangePercents(nan, nan, nan, nan, nan, nan, nan, nan)
    below54 = int(np.count_nonzero(g < VERY_LOW_MGDL))
    below70 = int(np.count_nonzero(g < LOW_MGDL))
    above180 = int(np.count_nonzero(g > HIGH_MGDL))
    above250 = int(np.count_nonzero(g > VERY_HIGH_MGDL))
    in_range = n - below70 - above180
    tight = int(np.count_nonzero((g >= LOW_MGDL) & (g <= TIGHT_HIGH_MGDL)))
    pct = 100.0 / n
    return RangePercents(
        below_54_pct=below54 * pct,
        from_54_below_70_pct=(below70 - below54) * pct,
        in_70_180_pct=in_range * pct,
        above_180_to_250_pct=(above180 - above250) * pct,
        above_250_pct=above250 * pct,
        below_70_pct=below70 * pct,
        above_180_pct=above180 * pct,
        in_70_140_pct=tight * pct,
    )


def glucose_stats(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    start_s: float | None = None,
    end_s: float | None = None,
    interval_s: float = 300.0,
) -> GlucoseStats:
    """Consensus metrics of the readings in ``[start_s, end_s)``.

    ``interval_s`` is the sensor's nominal sampling interval: it sets the expected number of
    readings (data sufficiency) and the time one reading stands for in episodes.
    """
    ts, g, lo, hi = clean_window(ts_s, mgdl, start_s, end_s)
    return _stats_sorted(ts, g, lo, hi, interval_s)


def _stats_sorted(
    ts: np.ndarray, g: np.ndarray, lo: float, hi: float, interval_s: float
) -> GlucoseStats:
    n = int(g.size)
    expected, sufficiency = data_sufficiency(n, lo, hi, interval_s)
    nan = float("nan")
    mean = float(g.mean()) if n else nan
    sd = float(g.std(ddof=1)) if n > 1 else nan
    cv = 100.0 * sd / mean if n > 1 and mean else nan

    seg = segment_ids(ts, continuing_gap_s(interval_s))

    def eps(mask: np.ndarray, below: bool) -> tuple[Episode, ...]:
        return tuple(find_episodes(ts, g, mask, interval_s=interval_s, below=below, segments=seg))

    return GlucoseStats(
        start_s=lo,
        end_s=hi,
        interval_s=float(interval_s),
        readings=n,
        expected_readings=expected,
        data_sufficiency_pct=sufficiency,
        mean_mgdl=mean,
        sd_mgdl=sd,
        cv_pct=cv,
        gmi_pct=gmi_percent(mean) if n else nan,
        min_mgdl=float(g.min()) if n else nan,
        max_mgdl=float(g.max()) if n else nan,
        ranges=range_percents(g),
        hypo_episodes_below_54=eps(g < VERY_LOW_MGDL, True),
        hypo_episodes_below_70=eps(g < LOW_MGDL, True),
        hyper_episodes_above_180=eps(g > HIGH_MGDL, False),
        hyper_episodes_above_250=eps(g > VERY_HIGH_MGDL, False),
    )


def stats_variability(s: GlucoseStats, local_s: np.ndarray, mgdl: np.ndarray) -> Variability:
    """Variability and risk metrics of the readings ``s`` was computed from (cleaned, at local
    wall-clock seconds ``local_s``), reusing its range percentages, mean and SD."""
    r = s.ranges
    bands = (r.below_54_pct, r.from_54_below_70_pct, r.above_180_to_250_pct, r.above_250_pct)
    return variability_local(local_s, mgdl, bands, s.mean_mgdl, s.sd_mgdl)


@dataclass(frozen=True, slots=True)
class GlucoseComparison:
    """A window and the previous window of the same length; ``change`` = current - previous.
    ``variability`` belongs to the current window."""

    current: GlucoseStats
    previous: GlucoseStats
    change: dict[str, float]
    variability: Variability


_COMPARED = (
    "readings",
    "data_sufficiency_pct",
    "mean_mgdl",
    "sd_mgdl",
    "cv_pct",
    "gmi_pct",
)


def compare_with_previous(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    start_s: float,
    end_s: float,
    interval_s: float = 300.0,
    tz: TimeZone = 0,
) -> GlucoseComparison:
    """Stats of ``[start_s, end_s)`` and of ``[2 start_s - end_s, start_s)``, and the
    variability of the first (``tz`` sets the days of MODD, CONGA, MAGE and ADRR)."""
    ts, g = clean_series(ts_s, mgdl)
    cur_keep = (ts >= start_s) & (ts < end_s)
    loc = local_seconds(ts[cur_keep], tz)
    return _compare_sorted(ts, g, start_s, end_s, interval_s, loc)


def _compare_sorted(
    ts: np.ndarray, g: np.ndarray, start_s: float, end_s: float, interval_s: float, loc: np.ndarray
) -> GlucoseComparison:
    """``loc``: local seconds of the readings in the current window."""
    length = end_s - start_s
    cur_keep = (ts >= start_s) & (ts < end_s)
    prev_keep = (ts >= start_s - length) & (ts < start_s)
    cur = _stats_sorted(ts[cur_keep], g[cur_keep], start_s, end_s, interval_s)
    prev = _stats_sorted(ts[prev_keep], g[prev_keep], start_s - length, start_s, interval_s)
    change = {k: float(getattr(cur, k)) - float(getattr(prev, k)) for k in _COMPARED}
    for f in fields(RangePercents):
        change[f.name] = getattr(cur.ranges, f.name) - getattr(prev.ranges, f.name)
    return GlucoseComparison(cur, prev, change, stats_variability(cur, loc, g[cur_keep]))


@dataclass(frozen=True, slots=True)
class AgpProfile:
    """Glucose percentiles by local time of day; row ``i`` is the bin at ``bin_start_min[i]``."""

    bin_start_min: np.ndarray  # minutes after local midnight
    readings: np.ndarray  # readings per bin
    percentiles: tuple[float, ...]
    values_mgdl: np.ndarray  # shape (bins, len(percentiles)); NaN where a bin is empty


def _grouped_quantiles(
    group: np.ndarray, values: np.ndarray, n_groups: int, qs: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Linear-interpolated (R type 7) quantiles of values per group, vectorised."""
    counts = np.bincount(group, minlength=n_groups)
    out = np.full((n_groups, qs.size), np.nan)
    has = counts > 0
    if not has.any():
        return out, counts
    pos = (counts[has, None] - 1) * qs[None, :]
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, counts[has, None] - 1)
    frac = pos - lo
    pick = _sorted_picker(group, values, counts)
    out[has] = pick(has, lo) * (1 - frac) + pick(has, hi) * frac
    return out, counts


def _sorted_picker(
    group: np.ndarray, values: np.ndarray, counts: np.ndarray
) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``pick(has, k)``: the k-th smallest value of each group in ``has``.

    Grouping by a stable radix sort of small integers and sorting a padded row per group is
    several times faster than a lexicographic argsort; very uneven groups (where the padding
    would dwarf the data) use the argsort."""
    n_groups, width = counts.size, int(counts.max())
    offsets = np.concatenate(([0], np.cumsum(counts)[:-1]))
    if n_groups * width > 4 * values.size + 4096 or n_groups >= 2**15:
        v = values[np.lexsort((values, group))]
        return lambda has, k: v[offsets[has, None] + k]
    order = np.argsort(group.astype(np.int16), kind="stable")
    g_sorted = group[order]
    rows = np.full((n_groups, width), np.inf)
    rows[g_sorted, np.arange(values.size) - offsets[g_sorted]] = values[order]
    rows.sort(axis=1)
    return lambda has, k: np.take_along_axis(rows[has], k, axis=1)


def agp_profile(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    tz: TimeZone = 0,
    bin_min: int = 15,
    percentiles: tuple[float, ...] = AGP_PERCENTILES,
) -> AgpProfile:
    """AGP percentiles (5/25/50/75/95 by default) per ``bin_min``-minute bin of local time."""
    if (24 * 60) % bin_min:
        raise ValueError("bin_min must divide a day")
    ts, g = clean_series(ts_s, mgdl)
    _, sec = local_day_and_second(ts, tz)
    return _agp_sorted(g, sec, bin_min, percentiles)


def _agp_sorted(
    g: np.ndarray, sec: np.ndarray, bin_min: int, percentiles: tuple[float, ...]
) -> AgpProfile:
    n_bins = 24 * 60 // bin_min
    b = np.minimum((sec // (bin_min * 60)).astype(np.int64), n_bins - 1)
    vals, counts = _grouped_quantiles(b, g, n_bins, np.asarray(percentiles) / 100.0)
    return AgpProfile(np.arange(n_bins) * bin_min, counts, tuple(percentiles), vals)


@dataclass(frozen=True, slots=True)
class DailyProfile:
    """One local calendar day."""

    local_day_start_s: float  # local midnight as a UTC timestamp (for the day's first reading)
    readings: int
    mean_mgdl: float
    min_mgdl: float
    max_mgdl: float
    below_70_pct: float
    in_70_180_pct: float
    above_180_pct: float


def daily_profiles(ts_s: np.ndarray, mgdl: np.ndarray, *, tz: TimeZone = 0) -> list[DailyProfile]:
    ts, g = clean_series(ts_s, mgdl)
    day, sec = local_day_and_second(ts, tz)
    return _daily_sorted(ts, g, day, sec)


def _daily_sorted(
    ts: np.ndarray, g: np.ndarray, day: np.ndarray, sec: np.ndarray
) -> list[DailyProfile]:
    if ts.size == 0:
        return []
    # ts is sorted, so local days only decrease where a zone falls back across midnight; that
    # repeated hour stays with the day it follows, so each day is one contiguous run.
    day = np.maximum.accumulate(day)
    first = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    k = first.size
    cnt = np.diff(np.concatenate((first, [ts.size])))
    mean = np.add.reduceat(g, first) / cnt
    mn = np.minimum.reduceat(g, first)
    mx = np.maximum.reduceat(g, first)
    low = np.add.reduceat((g < LOW_MGDL).astype(np.float64), first) * 100.0 / cnt
    high = np.add.reduceat((g > HIGH_MGDL).astype(np.float64), first) * 100.0 / cnt
    midnight = ts[first] - sec[first]
    return [
        DailyProfile(
            float(midnight[i]),
            int(cnt[i]),
            float(mean[i]),
            float(mn[i]),
            float(mx[i]),
            float(low[i]),
            float(100.0 - low[i] - high[i]),
            float(high[i]),
        )
        for i in range(k)
    ]


@dataclass(frozen=True, slots=True)
class GlucoseReport:
    """Everything a report page shows for one window."""

    comparison: GlucoseComparison
    agp: AgpProfile
    daily: list[DailyProfile]


def glucose_report(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    start_s: float,
    end_s: float,
    interval_s: float = 300.0,
    tz: TimeZone = 0,
    bin_min: int = 15,
) -> GlucoseReport:
    """Stats of the window and the previous one, AGP and daily profiles, cleaning once."""
    if (24 * 60) % bin_min:
        raise ValueError("bin_min must divide a day")
    ts, g = clean_series(ts_s, mgdl)
    keep = (ts >= start_s) & (ts < end_s)
    loc = local_seconds(ts[keep], tz)
    comparison = _compare_sorted(ts, g, start_s, end_s, interval_s, loc)
    ts, g = ts[keep], g[keep]
    day = np.floor(loc / DAY_S)
    sec = loc - day * DAY_S
    day = day.astype(np.int64)
    return GlucoseReport(
        comparison, _agp_sorted(g, sec, bin_min, AGP_PERCENTILES), _daily_sorted(ts, g, day, sec)
    )


__all__ = [
    "AGP_PERCENTILES",
    "DAY_S",
    "AgpProfile",
    "DailyProfile",
    "GlucoseComparison",
    "GlucoseReport",
    "GlucoseStats",
    "RangePercents",
    "agp_profile",
    "compare_with_previous",
    "daily_profiles",
    "glucose_report",
    "glucose_stats",
    "gmi_percent",
    "range_percents",
    "stats_variability",
]
