"""The clinical report (AGP-style, JSON or PDF) and read-only report links for clinicians."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from actors import metrics
from algorithms.glucose_stats import glucose_report
from algorithms.localtime import local_day_and_second
from algorithms.temperature import FEVER_C
from api.deps import CallerId, Pool
from api.errors import error, responses
from api.events import EventOut, Text, event_out
from api.profiles import ProfileAccess, profile_with
from api.stats import (
    GlucoseSection,
    KindSeries,
    TemperatureSection,
    load_series,
    section_from_comparison,
    temperature_section,
    window_end,
)
from api.tokens import hash_secret, new_secret
from storage import events, profiles, report_links

router = APIRouter(tags=["reports"])
ReadableProfile = Annotated[ProfileAccess, Depends(profile_with("readings"))]
ManagedProfile = Annotated[ProfileAccess, Depends(profile_with("manage"))]

ReportFormat = Literal["json", "pdf"]
Paper = Literal["a4", "letter"]
SUFFICIENT_PCT = 70.0
_PDF = {200: {"content": {"application/pdf": {}}, "description": "The report (JSON or PDF)"}}


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

    def t(metric: str, label: str, text: str, value: float | None, ok) -> Target:
        return Target(
            metric=metric,
            label=label,
            target=text,
            value=value,
            met=None if value is None else bool(ok(value)),
        )

    return [
        t("in_70_180_pct", "Time in range 70-180", "> 70 %", r and r.in_70_180_pct,
          lambda v: v > 70),
        t("below_70_pct", "Time below 70", "< 4 %", r and r.below_70_pct, lambda v: v < 4),
        t("below_54_pct", "Time below 54", "< 1 %", r and r.below_54_pct, lambda v: v < 1),
        t("above_180_pct", "Time above 180", "< 25 %", r and r.above_180_pct, lambda v: v < 25),
        t("above_250_pct", "Time above 250", "< 5 %", r and r.above_250_pct, lambda v: v < 5),
        t("cv_pct", "Coefficient of variation", "≤ 36 %", cur and cur.cv_pct, lambda v: v <= 36),
        t("data_sufficiency_pct", "Data sufficiency", "≥ 70 %", cur and cur.data_sufficiency_pct,
          lambda v: v >= SUFFICIENT_PCT),
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


async def _report(
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
    return await _report_of(pool, ref, days, end, device_id)


async def _report_of(
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


async def _answer(
    report: Report, loaded: dict[str, KindSeries], fmt: str, paper: str
) -> Report | Response:
    if fmt == "json":
        return report
    from api.report_pdf import render_report_pdf

    try:
        pdf = await run_in_threadpool(
            render_report_pdf, report, loaded.get("glucose"), loaded.get("temperature"), paper
        )
    except Exception:
        metrics.inc("vigil_report_jobs_total", kind="pdf", outcome="failed")
        raise
    metrics.inc("vigil_report_jobs_total", kind="pdf", outcome="ok")
    name = f"vigil-report-{report.end:%Y%m%d}-{report.days}d.pdf"
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'inline; filename="{name}"'},
    )


Days = Annotated[int, Query(ge=1, le=90, description="Length of the report window in days")]
Fmt = Annotated[ReportFormat, Query(alias="format", description="json or pdf")]
PaperQ = Annotated[Paper, Query(description="PDF page size")]


@router.get(
    "/v1/profiles/{profile_id}/report",
    response_model=Report,
    summary="Clinical report (AGP): metrics, time in ranges, percentiles, daily profiles",
    responses={**_PDF, **responses(401, 403, 404, 422)},
)
async def report(
    found: ReadableProfile,
    pool: Pool,
    days: Days = 15,
    fmt: Fmt = "json",
    paper: PaperQ = "a4",
    end: Annotated[
        AwareDatetime | None, Query(description="End of the window (exclusive); default now")
    ] = None,
    device_id: Annotated[uuid.UUID | None, Query(description="Only this device")] = None,
) -> Report | Response:
    """The report of the last `days` days: summary metrics against the 2019 consensus
    targets, time in ranges, the AGP percentile chart, daily profiles with events,
    hypo-/hyperglycaemia episodes and data sufficiency; for temperature, fever episodes and
    daily curves. `format=pdf` renders it (A4 or Letter)."""
    rep, loaded = await _report(pool, found.profile_id, days, window_end(end), device_id)
    return await _answer(rep, loaded, fmt, paper)


# -- report links ---------------------------------------------------------------------------


class ReportLinkCreate(BaseModel):
    days: int = Field(15, ge=1, le=90, description="Report window in days", examples=[15])
    expires_in_hours: int = Field(
        72, ge=1, le=720, description="How long the link works (at most 30 days)", examples=[72]
    )
    label: Text | None = Field(None, max_length=200, examples=["Dr Martin, clinic visit"])


class ReportLinkOut(BaseModel):
    id: uuid.UUID
    profile_id: uuid.UUID
    days: int = Field(examples=[15])
    window_end: datetime = Field(description="The report covers the days before this moment")
    label: str | None = Field(examples=["Dr Martin, clinic visit"])
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    accesses: int = Field(description="How often the link was opened", examples=[2])
    last_access: datetime | None


class ReportLinkCreated(ReportLinkOut):
    token: str = Field(description="Shown once; only its hash is stored")
    url: str = Field(examples=["https://vigil.example/v1/report-links/kq3…?format=pdf"])


class LinkAccess(BaseModel):
    accessed_at: datetime
    format: str = Field(examples=["pdf"])
    client_ip: str | None = Field(examples=["203.0.113.7"])
    user_agent: str | None = Field(examples=["Mozilla/5.0"])


@router.post(
    "/v1/profiles/{profile_id}/report-links",
    status_code=status.HTTP_201_CREATED,
    response_model=ReportLinkCreated,
    summary="Share the report with a clinician: an expiring, revocable read-only link",
    responses=responses(401, 403, 404, 422),
)
async def create_link(
    body: ReportLinkCreate, found: ManagedProfile, user_id: CallerId, pool: Pool, request: Request
) -> ReportLinkCreated:
    """Anyone with the URL can read this report (no login) until it expires or is revoked;
    every access is recorded. The window is fixed now: the last `days` days before this
    moment."""
    token, digest = new_secret()
    now = datetime.now(UTC).replace(microsecond=0)
    row = await report_links.create_link(
        pool,
        found.profile_id,
        user_id,
        digest,
        body.days,
        now,
        body.label,
        now + timedelta(hours=body.expires_in_hours),
    )
    url = f"{str(request.base_url).rstrip('/')}/v1/report-links/{token}?format=pdf"
    return ReportLinkCreated(**dict(row), token=token, url=url)


@router.get(
    "/v1/profiles/{profile_id}/report-links",
    response_model=list[ReportLinkOut],
    summary="Report links of a profile, with how often each was opened",
    responses=responses(401, 403, 404),
)
async def list_links(found: ManagedProfile, pool: Pool) -> list[ReportLinkOut]:
    return [ReportLinkOut(**dict(r)) for r in await report_links.list_links(pool, found.profile_id)]


class Revoked(BaseModel):
    revoked: bool = Field(examples=[True])


@router.delete(
    "/v1/profiles/{profile_id}/report-links/{link_id}",
    response_model=Revoked,
    summary="Revoke a report link (it stops working at once)",
    responses=responses(401, 403, 404),
)
async def revoke_link(link_id: uuid.UUID, found: ManagedProfile, pool: Pool) -> Revoked:
    if not await report_links.revoke_link(pool, found.profile_id, link_id):
        raise error(404, "report link not found")
    return Revoked(revoked=True)


@router.get(
    "/v1/profiles/{profile_id}/report-links/{link_id}/accesses",
    response_model=list[LinkAccess],
    summary="Who opened a report link, and when",
    responses=responses(401, 403, 404),
)
async def link_accesses(link_id: uuid.UUID, found: ManagedProfile, pool: Pool) -> list[LinkAccess]:
    rows = await report_links.list_accesses(pool, found.profile_id, link_id)
    if rows is None:
        raise error(404, "report link not found")
    return [LinkAccess(**dict(r)) for r in rows]


@router.get(
    "/v1/report-links/{token}",
    response_model=Report,
    summary="Open a shared report (no login; the link is the credential)",
    responses={**_PDF, **responses(404, 422)},
)
async def open_link(
    token: Annotated[str, Path(min_length=20, max_length=100)],
    pool: Pool,
    request: Request,
    fmt: Fmt = "pdf",
    paper: PaperQ = "a4",
) -> Report | Response:
    """The report the link was made for (read-only). 404 once it has expired or was revoked,
    exactly as for a token that never existed."""
    client = request.client.host if request.client else None
    link = await report_links.open_link(
        pool, hash_secret(token), fmt, client, request.headers.get("user-agent")
    )
    if link is None:
        raise error(404, "report link not found, expired or revoked")
    # The link's row already carries the profile's name and time zone (no second lookup).
    ref = ProfileRef(id=link["profile_id"], name=link["name"], timezone=link["timezone"])
    rep, loaded = await _report_of(pool, ref, link["days"], link["window_end"])
    return await _answer(rep, loaded, fmt, paper)
