"""The clinical report (AGP-style): what it contains, built from a profile's readings and
events. The report routes, report links, FHIR, the batch report jobs (cluster/) and the
benchmarks (bench/) all build it here; :mod:`api.reporting.pdf` renders it. No routes here.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from algorithms.glucose_stats import glucose_report
from algorithms.localtime import local_day_and_second
from algorithms.temperature import FEVER_C
from api.errors import error
from api.reporting.events import EventOut, event_out
from api.reporting.sections import (
    GlucoseSection,
    KindSeries,
    TemperatureSection,
    load_series,
    section_from_comparison,
    temperature_section,
)
from storage import events, profiles

SUFFICIENT_PCT = 70.0


class ProfileRef(BaseModel):
    id: uuid.UUID
    name: str = Field(examples=["Mia"])
    timezone: str = Field(examples=["Europe/Paris"])


class Target(BaseModel):
    metric: str = Field(examples=["in_70_180_pct"])
    label: str = Field(examples=["Time in range 70-180"])
    target: str = Field(examples=["> 70 %"])
    value: float | None = Field(examples=[72.4])
    met: bool | None = Field(description="Null when there are no readings", examples=[True])


class Agp(BaseModel):
    bin_min: int = Field(examples=[15])
    percentiles: list[float] = Field(examples=[[5, 25, 50, 75, 95]])
    minute_of_day: list[int] = Field(description="Start of each bin, minutes after midnight")
    readings: list[int]
    values_mgdl: list[list[float | None]] = Field(
        description="Per bin, the glucose at each percentile (null for an empty bin)"
    )


class DailyGlucose(BaseModel):
    date: date
    local_day: int = Field(description="Days since 1970-01-01 in local time", examples=[20416])
    readings: int = Field(examples=[288])
    mean_mgdl: float = Field(examples=[142.5])
    min_mgdl: float = Field(examples=[61.0])
    max_mgdl: float = Field(examples=[265.0])
    below_70_pct: float = Field(examples=[2.1])
    in_70_180_pct: float = Field(examples=[74.0])
    above_180_pct: float = Field(examples=[23.9])


class DailyTemperature(BaseModel):
    date: date
    readings: int = Field(examples=[1440])
    min_c: float = Field(examples=[36.4])
    mean_c: float = Field(examples=[37.0])
    max_c: float = Field(examples=[38.6])
    time_in_fever_pct: float = Field(examples=[6.0])


class Report(BaseModel):
    profile: ProfileRef
    days: int = Field(examples=[15])
    start: datetime
    end: datetime
    generated_at: datetime
    sufficient: bool = Field(
        description="Glucose readings cover at least 70 % of the expected ones", examples=[True]
    )
    glucose: GlucoseSection | None = Field(description="The same numbers as /stats")
    targets: list[Target]
    agp: Agp | None
    daily: list[DailyGlucose]
    temperature: TemperatureSection | None
    temperature_daily: list[DailyTemperature]
    events: list[EventOut]


def _targets(g: GlucoseSection | None) -> list[Target]:
    cur = g.current if g else None
    r = cur.ranges if cur else None

    def t(
        metric: str, label: str, text: str, value: float | None, ok: Callable[[float], bool]
    ) -> Target:
        return Target(
            metric=metric,
            label=label,
            target=text,
            value=value,
            met=None if value is None else bool(ok(value)),
        )

    return [
        t("in_70_180_pct", "Time in range 70-180", "> 70 %",
          r.in_70_180_pct if r else None, lambda v: v > 70),
        t("below_70_pct", "Time below 70", "< 4 %",
          r.below_70_pct if r else None, lambda v: v < 4),
        t("below_54_pct", "Time below 54", "< 1 %",
          r.below_54_pct if r else None, lambda v: v < 1),
        t("above_180_pct", "Time above 180", "< 25 %",
          r.above_180_pct if r else None, lambda v: v < 25),
        t("above_250_pct", "Time above 250", "< 5 %",
          r.above_250_pct if r else None, lambda v: v < 5),
        t("cv_pct", "Coefficient of variation", "≤ 36 %",
          cur.cv_pct if cur else None, lambda v: v <= 36),
        t("data_sufficiency_pct", "Data sufficiency", "≥ 70 %",
          cur.data_sufficiency_pct if cur else None, lambda v: v >= SUFFICIENT_PCT),
    ]  # fmt: skip


def _nan_none(row: np.ndarray) -> list[float | None]:
    return [None if not np.isfinite(v) else round(float(v), 2) for v in row]


def _temperature_daily(
    t: KindSeries, start_s: float, end_s: float, tz: str
) -> list[DailyTemperature]:
    keep = (t.ts >= start_s) & (t.ts < end_s) & np.isfinite(t.values)
    ts, c = t.ts[keep], t.values[keep]
    if ts.size == 0:
        return []
    day, _ = local_day_and_second(ts, tz)
    out: list[DailyTemperature] = []
    for d in np.unique(day):
        v = c[day == d]
        out.append(
            DailyTemperature(
                date=date.fromordinal(date(1970, 1, 1).toordinal() + int(d)),
                readings=int(v.size),
                min_c=float(v.min()),
                mean_c=round(float(v.mean()), 3),
                max_c=float(v.max()),
                time_in_fever_pct=round(100.0 * float((v >= FEVER_C).mean()), 2),
            )
        )
    return out


def build_report(
    profile: ProfileRef,
    days: int,
    start: datetime,
    end: datetime,
    loaded: dict[str, KindSeries],
    evs: list[EventOut],
    generated_at: datetime | None = None,
) -> Report:
    """The report of ``[start, end)`` from readings loaded for ``[start - length, end)``."""
    start_s, end_s = start.timestamp(), end.timestamp()
    g, t = loaded.get("glucose"), loaded.get("temperature")
    gsec = agp = None
    daily: list[DailyGlucose] = []
    if g is not None:
        rep = glucose_report(g.ts, g.values, start_s=start_s, end_s=end_s,
                             interval_s=g.interval_s, tz=profile.timezone)  # fmt: skip
        gsec = section_from_comparison(g.device_ids, rep.comparison)
        agp = Agp(
            bin_min=int(rep.agp.bin_start_min[1] - rep.agp.bin_start_min[0]),
            percentiles=list(rep.agp.percentiles),
            minute_of_day=rep.agp.bin_start_min.astype(int).tolist(),
            readings=rep.agp.readings.astype(int).tolist(),
            values_mgdl=[_nan_none(row) for row in rep.agp.values_mgdl],
        )
        zone = ZoneInfo(profile.timezone)
        for d in rep.daily:
            local = datetime.fromtimestamp(d.local_day_start_s, zone)
            day_no = (local.date() - date(1970, 1, 1)).days
            daily.append(
                DailyGlucose(
                    date=local.date(),
                    local_day=day_no,
                    readings=d.readings,
                    mean_mgdl=round(d.mean_mgdl, 2),
                    min_mgdl=d.min_mgdl,
                    max_mgdl=d.max_mgdl,
                    below_70_pct=round(d.below_70_pct, 2),
                    in_70_180_pct=round(d.in_70_180_pct, 2),
                    above_180_pct=round(d.above_180_pct, 2),
                )
            )
    tsec = None
    tdaily: list[DailyTemperature] = []
    if t is not None:
        tsec = temperature_section(t.device_ids, t.ts, t.values, start_s, end_s, t.interval_s)
        tdaily = _temperature_daily(t, start_s, end_s, profile.timezone)
    suff = gsec.current.data_sufficiency_pct if gsec else None
    return Report(
        profile=profile,
        days=days,
        start=start,
        end=end,
        generated_at=generated_at or datetime.now(UTC).replace(microsecond=0),
        sufficient=suff is not None and suff >= SUFFICIENT_PCT,
        glucose=gsec,
        targets=_targets(gsec),
        agp=agp,
        daily=daily,
        temperature=tsec,
        temperature_daily=tdaily,
        events=evs,
    )


async def load_report(
    pool: asyncpg.Pool,
    profile_id: uuid.UUID,
    days: int,
    end: datetime,
    device_id: uuid.UUID | None = None,
) -> tuple[Report, dict[str, KindSeries]]:
    row = await profiles.get_profile(pool, profile_id)
    if row is None:
        raise error(404, "profile not found")
    ref = ProfileRef(id=row["id"], name=row["name"], timezone=row["timezone"])
    return await report_of(pool, ref, days, end, device_id)


async def report_of(
    pool: asyncpg.Pool,
    profile: ProfileRef,
    days: int,
    end: datetime,
    device_id: uuid.UUID | None = None,
) -> tuple[Report, dict[str, KindSeries]]:
    start = end - timedelta(days=days)
    loaded = await load_series(pool, profile.id, start - (end - start), end, device_id)
    evs = [event_out(e) for e in await events.list_events(pool, profile.id, start, end, None, 1000)]
    # numpy over up to twice the window's readings (AGP, daily profiles): off the event loop.
    report = await run_in_threadpool(build_report, profile, days, start, end, loaded, evs)
    return report, loaded
