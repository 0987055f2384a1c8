"""The clinical report (AGP-style, JSON or PDF) and read-only report links for clinicians."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from actors import metrics
from api import rate_limits
from api.config import RateLimits
from api.deps import CallerId, Config, Pool
from api.errors import error, responses
from api.reporting.report import ProfileRef, Report, load_report, report_of
from api.reporting.sections import KindSeries, window_end
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import RequestModel, StrictJsonRoute, Text
from api.tokens import hash_secret, new_secret
from storage import report_links

router = APIRouter(tags=["reports"], route_class=StrictJsonRoute)
ReadableProfile = Annotated[ProfileAccess, Depends(profile_with("readings"))]
ManagedProfile = Annotated[ProfileAccess, Depends(profile_with("manage"))]

ReportFormat = Literal["json", "pdf"]
Paper = Literal["a4", "letter"]
_PDF: dict[int | str, dict[str, Any]] = {
    200: {"content": {"application/pdf": {}}, "description": "The report (JSON or PDF)"}
}


async def _answer(
    report: Report, loaded: dict[str, KindSeries], fmt: str, paper: str, limits: RateLimits
) -> Report | Response:
    if fmt == "json":
        return report
    from api.reporting.pdf import render_report_pdf

    async def render() -> bytes:
        glucose, temperature = loaded.get("glucose"), loaded.get("temperature")
        try:
            pdf = await run_in_threadpool(render_report_pdf, report, glucose, temperature, paper)
        except Exception:
            metrics.inc("vigil_report_jobs_total", kind="pdf", outcome="failed")
            raise
        metrics.inc("vigil_report_jobs_total", kind="pdf", outcome="ok")
        return pdf

    pdf = await rate_limits.render_pdf(limits.pdf_waiting_max, render)
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
    responses={**_PDF, **responses(401, 403, 404, 422), **rate_limits.TOO_MANY},
    dependencies=[rate_limits.by_user("report_per_user", "reports")],
)
async def report(
    found: ReadableProfile,
    pool: Pool,
    config: Config,
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
    rep, loaded = await load_report(pool, found.profile_id, days, window_end(end), device_id)
    return await _answer(rep, loaded, fmt, paper, config.rate_limits)


# -- report links ---------------------------------------------------------------------------


class ReportLinkCreate(RequestModel):
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
    responses={**_PDF, **responses(404, 422), **rate_limits.TOO_MANY},
    dependencies=[rate_limits.by_address("link_open_per_address", "report openings")],
)
async def open_link(
    token: Annotated[str, Path(min_length=20, max_length=100)],
    pool: Pool,
    config: Config,
    request: Request,
    fmt: Fmt = "pdf",
    paper: PaperQ = "a4",
) -> Report | Response:
    """The report the link was made for (read-only). 404 once it has expired or was revoked,
    exactly as for a token that never existed."""
    client = request.client.host if request.client else None
    subject = rate_limits.secret_subject(token)
    await rate_limits.enforce(
        pool, config.rate_limits, "link_open_per_link", subject, "openings of this link"
    )
    link = await report_links.open_link(
        pool, hash_secret(token), fmt, client, request.headers.get("user-agent")
    )
    if link is None:
        raise error(404, "report link not found, expired or revoked")
    # The link's row already carries the profile's name and time zone (no second lookup).
    ref = ProfileRef(id=link["profile_id"], name=link["name"], timezone=link["timezone"])
    rep, loaded = await report_of(pool, ref, link["days"], link["window_end"])
    return await _answer(rep, loaded, fmt, paper, config.rate_limits)
