"""The numbers every surface shows of a period: statistics sections (glucose consensus
metrics, variability, temperature) as response models, and the readings they are computed from.

Shared by the statistics route, the clinical report, FHIR, the batch report jobs and the
benchmarks, so every surface shows the same numbers. No routes here.
"""

from __future__ import annotations

import math
import uuid
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import asyncpg
import numpy as np
from pydantic import BaseModel, Field

from algorithms.episodes import Episode
from algorithms.glucose_stats import GlucoseComparison, GlucoseStats, compare_with_previous
from algorithms.temperature_stats import TemperatureStats, temperature_stats
from algorithms.variability import Variability
from api.errors import error
from storage import history


def _num(x: float) -> float | None:
    """JSON has no NaN: undefined statistics (no readings) are null."""
    return None if x is None or not math.isfinite(x) else float(x)


def utc(seconds: float) -> datetime:
    """Seconds since the epoch as an aware UTC datetime."""
    return datetime.fromtimestamp(seconds, UTC)


class EpisodeOut(BaseModel):
    start: datetime
    end: datetime
    duration_min: float = Field(examples=[35.0])
    extreme_value: float = Field(description="Nadir (hypo) or peak (hyper)", examples=[52.0])
    readings: int = Field(examples=[7])


def episode_out(e: Episode) -> EpisodeOut:
    return EpisodeOut(
        start=utc(e.start_s),
        end=utc(e.end_s),
        duration_min=round(e.duration_s / 60.0, 3),
        extreme_value=e.extreme_value,
        readings=e.readings,
    )


class Ranges(BaseModel):
    """Share of readings (%) per consensus band; the first five sum to 100."""

    below_54_pct: float | None = Field(examples=[0.8])
    from_54_below_70_pct: float | None = Field(examples=[2.1])
    in_70_180_pct: float | None = Field(examples=[72.4])
    above_180_to_250_pct: float | None = Field(examples=[19.3])
    above_250_pct: float | None = Field(examples=[5.4])
    below_70_pct: float | None = Field(examples=[2.9])
    above_180_pct: float | None = Field(examples=[24.7])
    in_70_140_pct: float | None = Field(examples=[48.0])


class WindowMetrics(BaseModel):
    """The period a kind's metrics cover, and how much of it the readings fill."""

    start: datetime
    end: datetime
    interval_s: float = Field(examples=[300])
    readings: int = Field(examples=[4032])
    expected_readings: int = Field(examples=[4320])
    data_sufficiency_pct: float | None = Field(examples=[93.3])


def window_fields(s: GlucoseStats | TemperatureStats) -> dict[str, Any]:
    """The :class:`WindowMetrics` fields of either kind's statistics."""
    return {
        "start": utc(s.start_s),
        "end": utc(s.end_s),
        "interval_s": s.interval_s,
        "readings": s.readings,
        "expected_readings": s.expected_readings,
        "data_sufficiency_pct": _num(s.data_sufficiency_pct),
    }


class GlucoseMetrics(WindowMetrics):
    mean_mgdl: float | None = Field(examples=[148.2])
    sd_mgdl: float | None = Field(examples=[51.0])
    cv_pct: float | None = Field(examples=[34.4])
    gmi_pct: float | None = Field(examples=[6.85])
    min_mgdl: float | None = Field(examples=[48.0])
    max_mgdl: float | None = Field(examples=[342.0])
    ranges: Ranges
    hypo_episodes_below_54: list[EpisodeOut]
    hypo_episodes_below_70: list[EpisodeOut]
    hyper_episodes_above_180: list[EpisodeOut]
    hyper_episodes_above_250: list[EpisodeOut]


def glucose_metrics(s: GlucoseStats) -> GlucoseMetrics:
    return GlucoseMetrics(
        **window_fields(s),
        mean_mgdl=_num(s.mean_mgdl),
        sd_mgdl=_num(s.sd_mgdl),
        cv_pct=_num(s.cv_pct),
        gmi_pct=_num(s.gmi_pct),
        min_mgdl=_num(s.min_mgdl),
        max_mgdl=_num(s.max_mgdl),
        ranges=Ranges(**{k: _num(v) for k, v in asdict(s.ranges).items()}),
        hypo_episodes_below_54=[episode_out(e) for e in s.hypo_episodes_below_54],
        hypo_episodes_below_70=[episode_out(e) for e in s.hypo_episodes_below_70],
        hyper_episodes_above_180=[episode_out(e) for e in s.hyper_episodes_above_180],
        hyper_episodes_above_250=[episode_out(e) for e in s.hyper_episodes_above_250],
    )


class GriOut(BaseModel):
    """Glycemia risk index (Klonoff et al. 2022), as on the newer AGP report."""

    gri: float | None = Field(
        description="3.0 x hypo component + 1.6 x hyper component, capped at 100 (0-100)",
        examples=[32.4],
    )
    hypo_component: float | None = Field(
        description="%<54 + 0.8 x %54-<70 (percent of readings)", examples=[3.1]
    )
    hyper_component: float | None = Field(
        description="%>250 + 0.5 x %>180-250 (percent of readings)", examples=[14.4]
    )
    zone: Literal["A", "B", "C", "D", "E"] | None = Field(
        description="A (lowest risk, GRI <= 20) to E (GRI > 80); null without readings",
        examples=["B"],
    )


class VariabilityMetrics(BaseModel):
    """Variability and risk of the current period, with the iglu R package's definitions
    (tested equal to iglu 4.3.0). Null where the data do not suffice for the metric."""

    gri: GriOut
    mage_mgdl: float | None = Field(
        description="Mean amplitude of glycaemic excursions (Fernandes et al. 2022 moving-"
        "average algorithm on a 5-minute grid), mg/dL; needs 160 minutes of data and one"
        " excursion above one SD",
        examples=[96.3],
    )
    conga24_mgdl: float | None = Field(
        description="CONGA(24): SD of differences 24 h apart on an interpolated grid, mg/dL;"
        " needs more than a day",
        examples=[48.7],
    )
    modd_mgdl: float | None = Field(
        description="Mean of daily differences at the same time of day, mg/dL; needs more"
        " than one day",
        examples=[37.2],
    )
    lbgi: float | None = Field(description="Low blood glucose index (unitless)", examples=[1.2])
    hbgi: float | None = Field(description="High blood glucose index (unitless)", examples=[6.8])
    adrr: float | None = Field(
        description="Average daily risk range over local days (unitless)", examples=[24.5]
    )
    j_index: float | None = Field(
        description="0.001 x (mean + SD)^2 with mg/dL; needs two readings", examples=[39.1]
    )
    mad_mgdl: float | None = Field(
        description="Median absolute deviation x 1.4826, mg/dL", examples=[40.0]
    )
    iqr_mgdl: float | None = Field(
        description="Interquartile range (75th - 25th percentile), mg/dL", examples=[62.0]
    )
    ea1c_pct: float | None = Field(
        description="Estimated A1c (Nathan 2008): (46.7 + mean mg/dL) / 28.7, %",
        examples=[6.8],
    )


def variability_metrics(v: Variability) -> VariabilityMetrics:
    return VariabilityMetrics(
        gri=GriOut(
            gri=_num(v.gri.gri),
            hypo_component=_num(v.gri.hypo_component),
            hyper_component=_num(v.gri.hyper_component),
            zone=v.gri.zone,
        ),
        **{k: _num(getattr(v, k)) for k in VariabilityMetrics.model_fields if k != "gri"},
    )


class GlucoseSection(BaseModel):
    device_ids: list[uuid.UUID]
    current: GlucoseMetrics
    previous: GlucoseMetrics
    variability: VariabilityMetrics = Field(description="Of the current period")
    change: dict[str, float | None] = Field(
        description="current - previous for readings, sufficiency, mean, SD, CV, GMI and every"
        " range percentage (null where either side is undefined)",
        examples=[{"mean_mgdl": -6.1, "in_70_180_pct": 4.2}],
    )


class TemperatureMetrics(WindowMetrics):
    min_c: float | None = Field(examples=[36.4])
    max_c: float | None = Field(examples=[38.9])
    mean_c: float | None = Field(examples=[37.1])
    fever_c: float = Field(examples=[38.0])
    time_in_fever_pct: float | None = Field(examples=[8.5])
    time_in_fever_min: float = Field(examples=[122.0])
    fever_episodes: list[EpisodeOut]


def temperature_metrics(s: TemperatureStats) -> TemperatureMetrics:
    return TemperatureMetrics(
        **window_fields(s),
        min_c=_num(s.min_c),
        max_c=_num(s.max_c),
        mean_c=_num(s.mean_c),
        fever_c=s.fever_c,
        time_in_fever_pct=_num(s.time_in_fever_pct),
        time_in_fever_min=s.time_in_fever_s / 60.0,
        fever_episodes=[episode_out(e) for e in s.fever_episodes],
    )


class TemperatureSection(BaseModel):
    device_ids: list[uuid.UUID]
    current: TemperatureMetrics
    previous: TemperatureMetrics
    change: dict[str, float | None] = Field(examples=[{"mean_c": 0.4, "time_in_fever_pct": 5.0}])


_TEMP_COMPARED = ("readings", "data_sufficiency_pct", "min_c", "max_c", "mean_c",
                  "time_in_fever_pct")  # fmt: skip


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else _num(a - b)


def glucose_section(
    device_ids: list[uuid.UUID],
    ts: np.ndarray,
    values: np.ndarray,
    start_s: float,
    end_s: float,
    interval_s: float,
    tz: str = "UTC",
) -> GlucoseSection:
    cmp = compare_with_previous(
        ts, values, start_s=start_s, end_s=end_s, interval_s=interval_s, tz=tz
    )
    return section_from_comparison(device_ids, cmp)


def section_from_comparison(device_ids: list[uuid.UUID], cmp: GlucoseComparison) -> GlucoseSection:
    return GlucoseSection(
        device_ids=device_ids,
        current=glucose_metrics(cmp.current),
        previous=glucose_metrics(cmp.previous),
        variability=variability_metrics(cmp.variability),
        change={k: _num(v) for k, v in cmp.change.items()},
    )


def temperature_section(
    device_ids: list[uuid.UUID],
    ts: np.ndarray,
    values: np.ndarray,
    start_s: float,
    end_s: float,
    interval_s: float,
) -> TemperatureSection:
    length = end_s - start_s
    cur = temperature_metrics(
        temperature_stats(ts, values, start_s=start_s, end_s=end_s, interval_s=interval_s)
    )
    prev = temperature_metrics(
        temperature_stats(
            ts, values, start_s=start_s - length, end_s=start_s, interval_s=interval_s
        )
    )
    change = {k: _diff(getattr(cur, k), getattr(prev, k)) for k in _TEMP_COMPARED}
    return TemperatureSection(device_ids=device_ids, current=cur, previous=prev, change=change)


@dataclass(slots=True)
class KindSeries:
    """A profile's readings of one kind (all its devices of that kind merged)."""

    device_ids: list[uuid.UUID]
    interval_s: float
    ts: np.ndarray
    values: np.ndarray


async def selected_devices(
    pool: asyncpg.Pool, profile_id: uuid.UUID, device_id: uuid.UUID | None
) -> list[asyncpg.Record]:
    """The profile's devices, or only ``device_id`` (404 when it is not on the profile)."""
    devices = await history.profile_devices(pool, profile_id)
    if device_id is None:
        return devices
    devices = [d for d in devices if d["id"] == device_id]
    if not devices:
        raise error(404, "device not found on this profile")
    return devices


async def load_series(
    pool: asyncpg.Pool,
    profile_id: uuid.UUID,
    start: datetime,
    end: datetime,
    device_id: uuid.UUID | None,
) -> dict[str, KindSeries]:
    """Readings in ``[start, end)`` per device kind present on the profile."""
    devices = await selected_devices(pool, profile_id, device_id)
    out: dict[str, KindSeries] = {}
    for kind in ("glucose", "temperature"):
        mine = [d for d in devices if d["kind"] == kind]
        if not mine:
            continue
        ids = [d["id"] for d in mine]
        ts, values = await history.series(pool, ids, start, end)
        out[kind] = KindSeries(ids, float(min(d["interval_s"] for d in mine)), ts, values)
    return out


EARLIEST_END = datetime(2000, 1, 1, tzinfo=UTC)


def window_end(end: datetime | None) -> datetime:
    """``end`` (default now); 422 unless between 2000 and one day from now."""
    now = datetime.now(UTC)
    if end is None:
        return now
    if not EARLIEST_END <= end <= now + timedelta(days=1):
        raise error(422, "end must be between 2000-01-01 and one day from now")
    return end


def period_bounds(days: int, end: datetime | None) -> tuple[datetime, datetime]:
    end = window_end(end)
    return end - timedelta(days=days), end


def sections(
    loaded: dict[str, KindSeries], start_s: float, end_s: float, tz: str = "UTC"
) -> dict[str, GlucoseSection | TemperatureSection | None]:
    g, t = loaded.get("glucose"), loaded.get("temperature")
    return {
        "glucose": None
        if g is None
        else glucose_section(g.device_ids, g.ts, g.values, start_s, end_s, g.interval_s, tz),
        "temperature": None
        if t is None
        else temperature_section(t.device_ids, t.ts, t.values, start_s, end_s, t.interval_s),
    }
