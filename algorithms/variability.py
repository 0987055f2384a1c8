"""Glycaemic variability and risk metrics beyond the consensus set, as the iglu R package
(Broll et al. 2021, version 4.3.0) defines them, so Vigil's numbers can be checked against the
reference researchers use.

Every function takes readings in mg/dL (and, where time matters, timestamps in seconds since the
epoch) and returns NaN for "not enough data" rather than a misleading number; the API turns
NaN into null. What each metric needs is stated in its docstring.

Three metrics (CONGA, MODD, MAGE) are defined on a regular time grid. iglu builds it with
``CGMS2DayByDay``, and :func:`day_grid` does the same: a grid of step ``dt`` (the median
reading interval rounded to whole minutes, adjusted so it divides a day) starting one step after
local midnight of the first day, values linearly interpolated between readings, and nothing
interpolated across a gap longer than 45 minutes. Using the same grid is what makes the values
equal to iglu's; without it CONGA and MODD would depend on the sensor's jitter.

Where Vigil deliberately differs from iglu (neither case occurs in iglu's example data):
readings repeated at one instant count once with the lowest value, Vigil's rule everywhere
(:func:`algorithms.series.clean_series`), where iglu's grid keeps the last one; and a trace with
no variation at all has no MAGE (NaN), where iglu's excursion search does not terminate.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np

from algorithms.localtime import DAY_S, TimeZone, local_seconds
from algorithms.series import clean_series

NAN = float("nan")
INTERP_GAP_S = 45 * 60  # iglu's inter_gap: no interpolation across longer gaps
MAGE_GRID_S = 300  # iglu's MAGE always works on a 5-minute grid
MAGE_SHORT_MA = 5  # points of the short moving average (25 min)
MAGE_LONG_MA = 32  # points of the long moving average (160 min)
MAGE_MAX_GAP_S = 180 * 60  # a longer gap splits the trace into separately measured segments
# Kovatchev's symmetrised glucose scale: f(g) = 1.509 (ln(g)^1.084 - 5.381); risk = 10 f^2.
# iglu rounds 10 x 1.509^2 to 22.77; we keep its constant so the values agree.
BG_EXPONENT = 1.084
BG_OFFSET = 5.381
BG_RISK_SCALE = 22.77
GriZone = Literal["A", "B", "C", "D", "E"]
GRI_ZONES: tuple[tuple[float, GriZone], ...] = (
    (20.0, "A"),
    (40.0, "B"),
    (60.0, "C"),
    (80.0, "D"),
    (100.0, "E"),
)


def _finite(g: np.ndarray) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64).ravel()
    return g[np.isfinite(g)]


def _bg_scale(g: np.ndarray) -> np.ndarray:
    """Kovatchev's symmetrised glucose (without the 1.509 factor, folded into the scale)."""
    return np.asarray(np.log(g) ** BG_EXPONENT - BG_OFFSET)


def risk_indices(mgdl: np.ndarray) -> tuple[float, float]:
    """LBGI and HBGI (Kovatchev et al. 2006): the mean over readings of the low (high) branch of
    the symmetrised risk 22.77 (ln(g)^1.084 - 5.381)^2, zero on the other branch.

    Unitless (0 to about 100). Needs one reading; NaN without any."""
    g = _finite(mgdl)
    return _risk_from_scale(_bg_scale(g)) if g.size else (NAN, NAN)


def _risk_from_scale(f: np.ndarray) -> tuple[float, float]:
    sq = BG_RISK_SCALE * f * f
    low = float(np.where(f < 0, sq, 0.0).sum() / f.size)
    return low, float(np.where(f > 0, sq, 0.0).sum() / f.size)


def adrr(ts_s: np.ndarray, mgdl: np.ndarray, *, tz: TimeZone = 0) -> float:
    """Average daily risk range (Kovatchev et al. 2006): per local calendar day, the risk of the
    day's highest reading plus that of its lowest (each zero when on the other side of the
    scale's centre, 112.5 mg/dL), averaged over the days with readings.

    Unitless. Needs one day with readings (Kovatchev recommends 14 or more days); NaN without."""
    ts, g = clean_series(ts_s, mgdl)
    return _adrr_local(local_seconds(ts, tz), _bg_scale(g))


def _adrr_local(loc: np.ndarray, f: np.ndarray) -> float:
    """ADRR from local seconds and the readings' symmetrised scale."""
    if f.size == 0:
        return NAN
    day = np.floor(loc / DAY_S)
    starts = np.flatnonzero(np.concatenate(([True], day[1:] != day[:-1])))
    hi = np.maximum(np.maximum.reduceat(f, starts), 0.0)
    lo = np.minimum(np.minimum.reduceat(f, starts), 0.0)
    return float(np.mean(BG_RISK_SCALE * (hi * hi + lo * lo)))


def j_index(mean_mgdl: float, sd_mgdl: float) -> float:
    """J-index (Wojcicki 1995): 0.001 (mean + SD)^2 with mg/dL and the sample SD; unitless.
    NaN when the SD is undefined (fewer than two readings)."""
    return 0.001 * (mean_mgdl + sd_mgdl) ** 2


def ea1c_pct(mean_mgdl: float) -> float:
    """Estimated A1c (%), Nathan et al. 2008: (46.7 + mean mg/dL) / 28.7."""
    return (46.7 + mean_mgdl) / 28.7


def mad_mgdl(mgdl: np.ndarray) -> float:
    """Median absolute deviation (mg/dL) scaled to estimate the SD of normal data:
    1.4826 median(|g - median(g)|), as R's ``mad``. NaN without readings."""
    return _spread(np.sort(_finite(mgdl)))[0]


def iqr_mgdl(mgdl: np.ndarray) -> float:
    """Interquartile range (mg/dL): 75th minus 25th percentile, linearly interpolated (R type 7).
    NaN without readings."""
    return _spread(np.sort(_finite(mgdl)))[1]


def _quantile_sorted(s: np.ndarray, q: float) -> float:
    pos = (s.size - 1) * q
    lo = int(pos)
    hi = min(lo + 1, s.size - 1)
    return float(s[lo] + (s[hi] - s[lo]) * (pos - lo))


def _spread(s: np.ndarray) -> tuple[float, float]:
    """MAD and IQR of sorted finite readings, sorting once."""
    if s.size == 0:
        return NAN, NAN
    med = _quantile_sorted(s, 0.5)
    mad = 1.4826 * float(np.median(np.abs(s - med)))
    return mad, _quantile_sorted(s, 0.75) - _quantile_sorted(s, 0.25)


@dataclass(frozen=True, slots=True)
class Gri:
    """Glycemia risk index (Klonoff et al. 2022) and its two components, in percent of time.

    hypo = VLow + 0.8 Low, hyper = VHigh + 0.5 High, where VLow = %<54, Low = %54-<70,
    VHigh = %>250, High = %>180-250; GRI = 3.0 hypo + 1.6 hyper, capped at 100. The zones A
    (lowest risk) to E split GRI at 20, 40, 60 and 80.
    """

    gri: float
    hypo_component: float
    hyper_component: float
    zone: GriZone | None


def gri(
    below_54_pct: float,
    from_54_below_70_pct: float,
    above_180_to_250_pct: float,
    above_250_pct: float,
) -> Gri:
    """GRI from the consensus bands (percent of readings); NaN (zone None) without readings."""
    hypo = below_54_pct + 0.8 * from_54_below_70_pct
    hyper = above_250_pct + 0.5 * above_180_to_250_pct
    value = 3.0 * hypo + 1.6 * hyper
    if not np.isfinite(value):
        return Gri(NAN, NAN, NAN, None)
    value = min(100.0, value)
    zone = next(z for bound, z in GRI_ZONES if value <= bound)
    return Gri(value, hypo, hyper, zone)


@dataclass(frozen=True, slots=True)
class DayGrid:
    """Readings interpolated on a regular grid, one row per local day.

    ``values[d, c]`` is the glucose at ``day0_s + d * DAY_S + (c + 1) * dt_s`` in local
    wall-clock seconds (so the first column is one step after midnight, as in iglu); NaN where
    there is no reading on either side within ``INTERP_GAP_S``.
    """

    day0_s: float
    dt_s: float
    values: np.ndarray


def grid_step_min(median_interval_s: float) -> int:
    """iglu's grid step: the median interval rounded to whole minutes (half to even, as R),
    then, unless it divides a day, 20 min when above 20 or else the nearest multiple of 5."""
    dt = max(1, int(np.round(median_interval_s / 60.0)))
    if 1440 % dt == 0:
        return dt
    if dt > 20:
        return 20
    rem = dt % 5
    return dt + 5 - rem if rem > 2 else dt - rem


def day_grid(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    tz: TimeZone = 0,
    dt_s: float | None = None,
    max_gap_s: float = INTERP_GAP_S,
) -> DayGrid | None:
    """iglu's ``CGMS2DayByDay``: the readings on a grid of step ``dt_s`` (default
    :func:`grid_step_min` of the median interval) from local midnight of the first day to the
    end of the last. None with fewer than two readings or a step longer than ``max_gap_s``."""
    ts, g = clean_series(ts_s, mgdl)
    return _grid_local(local_seconds(ts, tz), g, dt_s, max_gap_s)


def _grid_local(
    loc: np.ndarray, g: np.ndarray, dt_s: float | None, max_gap_s: float = INTERP_GAP_S
) -> DayGrid | None:
    if loc.size < 2:
        return None
    if not bool((loc[1:] > loc[:-1]).all()):  # a daylight-saving fall-back repeats local times
        loc, g = clean_series(loc, g)
    step = 60.0 * grid_step_min(float(np.median(np.diff(loc)))) if dt_s is None else dt_s
    if step > max_gap_s:
        return None
    return _grid_sorted(loc, g, step, max_gap_s)


def _grid_sorted(loc: np.ndarray, g: np.ndarray, step: float, max_gap_s: float) -> DayGrid:
    ndays = int(np.ceil((loc[-1] - loc[0]) / DAY_S + 1))
    day0 = float(np.floor(loc[0] / DAY_S) * DAY_S)
    per_day = round(DAY_S / step)
    x = day0 + step * np.arange(1, ndays * per_day + 1)
    y = np.interp(x, loc, g)
    # Point k sits at day0 + (k + 1) step: blank those before the first reading, after the last
    # and strictly inside gaps longer than max_gap_s (boundaries by index arithmetic, not search).
    gap = np.flatnonzero(np.diff(loc) > max_gap_s)
    lo = np.concatenate(([-np.inf], loc[gap], [loc[-1]]))
    hi = np.concatenate(([loc[0]], loc[gap + 1], [np.inf]))
    first = np.clip(np.floor((lo - day0) / step), 0, x.size).astype(np.int64)
    last = np.clip(np.ceil((hi - day0) / step) - 1, 0, x.size).astype(np.int64)
    cover = np.zeros(x.size + 1, dtype=np.int64)
    np.add.at(cover, first, 1)
    np.add.at(cover, np.maximum(first, last), -1)
    y[np.cumsum(cover[:-1]) > 0] = np.nan
    return DayGrid(day0, step, y.reshape(ndays, per_day))


def conga(grid: DayGrid | None, hours: int = 24) -> float:
    """CONGA(n) (McDonnell et al. 2005): sample SD (mg/dL) of the differences between grid values
    ``hours`` apart; iglu's default, n = 24, is the day-to-day one. Needs two such pairs."""
    if grid is None:
        return NAN
    v = grid.values.ravel()
    lag = round(3600.0 / grid.dt_s) * hours
    d = v[lag:] - v[:-lag] if lag < v.size else np.empty(0)
    d = d[np.isfinite(d)]
    return float(d.std(ddof=1)) if d.size > 1 else NAN


def modd(grid: DayGrid | None, lag_days: int = 1) -> float:
    """MODD (Service & Nelson 1980): mean absolute difference (mg/dL) between grid values at the
    same time of day ``lag_days`` apart. Needs more than one day with readings at a common
    time of day; NaN otherwise."""
    if grid is None or grid.values.shape[0] <= lag_days:
        return NAN
    d = np.abs(grid.values[lag_days:] - grid.values[:-lag_days])
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else NAN


def _rolling_mean(v: np.ndarray, w: int) -> np.ndarray:
    """Right-aligned mean of the finite values of the last ``w`` points; the first ``w - 1``
    take the first full window's value (as iglu fills them)."""
    ok = np.isfinite(v)
    s = np.concatenate(([0.0], np.cumsum(np.where(ok, v, 0.0))))
    c = np.concatenate(([0], np.cumsum(ok)))
    with np.errstate(invalid="ignore", divide="ignore"):
        m = (s[w:] - s[:-w]) / (c[w:] - c[:-w])
    return np.concatenate((np.full(w - 1, m[0]), m))


def _crossings(v: np.ndarray, delta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where the short moving average crosses the long one, with the first and last points:
    indices and whether a maximum (True) or minimum follows. A crossing needs both readings
    and both differences around it; one resumes after a gap when the sign differs from the
    last crossing's."""
    sign = np.sign(delta)
    ok = np.isfinite(v) & np.isfinite(delta)
    valid = np.flatnonzero(ok[1:] & ok[:-1]) + 1
    cand = valid[sign[valid] != 0]
    cond1 = sign[cand] * sign[cand - 1] < 0
    cur0 = sign[0]
    prev = np.concatenate(([cur0], sign[cand]))[:-1]
    cond2 = sign[cand] != prev
    if cur0 == 0:  # no sign to compare with until the first plain sign change
        first = np.flatnonzero(cond1)
        cond2[: (first[0] + 1) if first.size else cand.size] = False
    idx = cand[cond1 | cond2]
    ids = np.concatenate(([0], idx, [v.size - 1]))
    return ids, delta[ids] > 0


def _turning_points(v: np.ndarray, ids: np.ndarray, is_max: np.ndarray) -> np.ndarray:
    """The extreme between consecutive crossings, each search starting at the previous one."""
    lo = np.where(np.isfinite(v), v, np.inf)
    hi = np.where(np.isfinite(v), v, -np.inf)
    out = np.empty(ids.size - 1)
    s1 = int(ids[0])
    for i in range(ids.size - 1):
        s2 = int(ids[i + 1]) + 1
        k = s1 + int(np.argmax(hi[s1:s2]) if is_max[i] else np.argmin(lo[s1:s2]))
        out[i], s1 = v[k], k
    return out


def _excursions(a: list[float], sd: float, restart_at_turn: bool) -> list[float]:
    """iglu's excursion elimination over turning points ``a`` (rises; negate for falls): a
    rise counts once it exceeds one SD, and ends at its peak once a fall of more than one SD
    follows (or the data end). The lowest point since ``prev`` (first of equals, as R's
    ``which.max`` of the rises) is kept as the walk goes, so the walk is linear."""
    heights: list[float] = []
    n, j, prev = len(a), 0, 0
    low = 0  # index of the lowest a[prev..j]
    while j < n:
        if a[j] < a[low]:
            low = j
        if a[j] - a[low] < sd:
            j += 1
            continue
        i, k = low, j
        while True:  # follow the rise to its peak, until a large fall or the end
            if a[k] > a[j]:
                j = k
            if a[k] - a[j] < -sd or k == n - 1:
                break
            k += 1
        heights.append(a[j] - a[i])
        prev, j = (j if restart_at_turn else k), k
        low = min(range(prev, j + 1), key=a.__getitem__)
    return heights


def _mage_segment(v: np.ndarray) -> tuple[float, float]:
    """MAGE+ and MAGE- of one segment (NaN where no excursion qualifies)."""
    if v.size < max(7, MAGE_LONG_MA):
        return NAN, NAN
    delta = _rolling_mean(v, MAGE_SHORT_MA) - _rolling_mean(v, MAGE_LONG_MA)
    ids, is_max = _crossings(v, delta)
    a = _turning_points(v, ids, is_max)
    sd = float(np.nanstd(v, ddof=1))
    if not sd > 0:  # a flat trace has no excursions (iglu would not terminate)
        return NAN, NAN
    plus = _excursions(a.tolist(), sd, restart_at_turn=False)
    minus = _excursions((-a).tolist(), sd, restart_at_turn=True)
    return (float(np.mean(plus)) if plus else NAN), (float(np.mean(minus)) if minus else NAN)


def mage(ts_s: np.ndarray, mgdl: np.ndarray, *, tz: TimeZone = 0) -> float:
    """Mean amplitude of glycaemic excursions (mg/dL) by the moving-average algorithm of
    Fernandes et al. 2022, iglu's default (``mage(version = "ma")``, direction "avg").

    The readings go on iglu's 5-minute grid; a gap over 3 hours splits the trace into segments.
    Per segment, crossings of a 25-minute and a 160-minute moving average bracket the peaks
    and nadirs; rises (MAGE+) and falls (MAGE-) larger than the segment's SD are averaged, and
    the segments' MAGE+ and MAGE- are weighted by the segment's duration. Needs 160 minutes of
    data (32 grid points) and at least one excursion larger than one SD; NaN otherwise."""
    ts, g = clean_series(ts_s, mgdl)
    return _mage_local(local_seconds(ts, tz), g)


def _mage_local(loc: np.ndarray, g: np.ndarray) -> float:
    grid = _grid_local(loc, g, MAGE_GRID_S)
    if grid is None:
        return NAN
    v = grid.values.ravel()
    fin = np.flatnonzero(np.isfinite(v))
    v = v[fin[0] : fin[-1] + 1]
    if v.size < max(7, MAGE_LONG_MA):
        return NAN
    total = weight = 0.0
    for lo, hi in _segments(v, int(MAGE_MAX_GAP_S // MAGE_GRID_S)):
        span = float(hi - 1 - lo)
        for m in _mage_segment(v[lo:hi]):
            if np.isfinite(m):
                total, weight = total + m * span, weight + span
    return total / weight if weight > 0 else NAN


def _segments(v: np.ndarray, max_gap_points: int) -> list[tuple[int, int]]:
    """Stretches of ``v`` (start, end exclusive) between runs of more than ``max_gap_points``
    missing points."""
    gap = np.concatenate(([False], ~np.isfinite(v), [False])).astype(np.int8)
    starts = np.flatnonzero(np.diff(gap) == 1)
    ends = np.flatnonzero(np.diff(gap) == -1)
    long = (ends - starts) > max_gap_points
    bounds = np.concatenate(([0], np.column_stack((starts[long], ends[long])).ravel(), [v.size]))
    return [(int(a), int(b)) for a, b in bounds.reshape(-1, 2) if b > a]


@dataclass(frozen=True, slots=True)
class Variability:
    """Variability and risk metrics of one window; NaN where the data do not suffice."""

    gri: Gri
    mage_mgdl: float
    conga24_mgdl: float
    modd_mgdl: float
    lbgi: float
    hbgi: float
    adrr: float
    j_index: float
    mad_mgdl: float
    iqr_mgdl: float
    ea1c_pct: float

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def variability(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    *,
    ranges: tuple[float, float, float, float],
    mean_mgdl: float,
    sd_mgdl: float,
    tz: TimeZone = 0,
) -> Variability:
    """All the metrics of one window's readings; ``ranges`` are the consensus bands (%) below
    54, 54-<70, >180-250 and above 250, and the mean and SD come from the consensus stats
    (:class:`algorithms.glucose_stats.GlucoseStats` of the same readings)."""
    ts, g = clean_series(ts_s, mgdl)
    return variability_local(local_seconds(ts, tz), g, ranges, mean_mgdl, sd_mgdl)


def variability_local(
    loc: np.ndarray,
    g: np.ndarray,
    ranges: tuple[float, float, float, float],
    mean_mgdl: float,
    sd_mgdl: float,
) -> Variability:
    """:func:`variability` of cleaned readings at local wall-clock seconds ``loc`` (computed
    once by the caller, who needs them for daily profiles too)."""
    f = _bg_scale(g)
    lbgi, hbgi = _risk_from_scale(f) if g.size else (NAN, NAN)
    mad, iqr = _spread(np.sort(g))
    grid = _grid_local(loc, g, None)
    return Variability(
        gri=gri(*ranges),
        mage_mgdl=_mage_local(loc, g),
        conga24_mgdl=conga(grid, 24),
        modd_mgdl=modd(grid),
        lbgi=lbgi,
        hbgi=hbgi,
        adrr=_adrr_local(loc, f),
        j_index=j_index(mean_mgdl, sd_mgdl),
        mad_mgdl=mad,
        iqr_mgdl=iqr,
        ea1c_pct=ea1c_pct(mean_mgdl),
    )
