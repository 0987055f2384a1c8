"""FHIR R4 for clinics, per the HL7 CGM implementation guide: a profile is a Patient, a
sensor a Device, readings and the consensus summaries Observations, the report a
DiagnosticReport with its PDF; ``$submit-cgm-bundle`` imports readings. The caller's
Vigil access token decides, with the same grants as the rest of the API (reading needs
the `readings` scope, submitting `manage`).
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
import numpy as np
from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from algorithms.sensors import SensorKind, spec_for
from api.deps import CallerId, Config, Pool, Router, refuse
from api.errors import error, responses
from api.reporting.pdf import render_report_pdf
from api.reporting.report import load_report
from api.reporting.sections import glucose_section, load_series
from api.routes.audit import record_read
from api.routes.fhir import resources as fhir
from api.routes.history import send_history
from api.schemas import JsonRefused, StrictJsonRoute, loads_strict
from storage import access, devices, history, profiles, readings

router = APIRouter(prefix="/fhir/r4", tags=["fhir"], route_class=StrictJsonRoute)
DEFAULT_DAYS = 14
REPORT_DAYS = 15  # Vigil's summary report, as the AGP report: 15 days
MAX_DAYS = 90
MAX_SUBMITTED = 50_000
MAX_BODY_BYTES = 25_000_000
SUBMIT_SERIAL = "fhir-import"


class FhirResource(BaseModel):
    """A FHIR R4 resource (JSON); its elements follow the resource type."""

    model_config = ConfigDict(extra="allow")
    resourceType: str = Field(examples=["Observation"])
    id: str | None = Field(None, examples=["2f0e5c1e-7d6f-5b8a-9c3d-1e2f3a4b5c6d"])


class FhirBundle(FhirResource):
    resourceType: str = Field(examples=["Bundle"])
    type: str = Field(examples=["searchset"])
    total: int = Field(examples=[4032])
    entry: list[dict[str, Any]] = Field(
        examples=[
            [
                {
                    "fullUrl": "https://vigil.example.org/fhir/r4/Observation/2f0e5c1e",
                    "resource": {
                        "resourceType": "Observation",
                        "code": {"coding": [{"system": "http://loinc.org", "code": "99504-3"}]},
                    },
                }
            ]
        ]
    )


_DATE = re.compile(r"^(ge|gt|le|lt|eq)?(\d{4}-\d{2}-\d{2}(T[\d:.]+(Z|[+-]\d{2}:\d{2}))?)$")


def window(
    dates: list[str] | None, now: datetime, default_days: int = DEFAULT_DAYS
) -> tuple[datetime, datetime]:
    """``[start, end)`` from FHIR ``date`` parameters (ge/gt/le/lt/eq prefixes; a bare date
    is midnight UTC); default the last ``default_days``; at most 90 days."""
    start, end = None, None
    for value in dates or []:
        m = _DATE.match(value)
        try:
            ts = datetime.fromisoformat(m.group(2).replace("Z", "+00:00")) if m else None
        except ValueError:
            ts = None
        if m is None or ts is None:
            raise error(422, f"date: {value!r} is not a FHIR date search (e.g. ge2026-11-01)")
        prefix, text = m.group(1) or "eq", m.group(2)
        ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
        if prefix in ("ge", "gt", "eq"):
            start = ts
        if prefix in ("le", "lt", "eq"):
            end = ts + (timedelta(days=1) if prefix == "eq" and "T" not in text else timedelta())
    end = end or now
    start = start or end - timedelta(days=default_days)
    if not timedelta() < end - start <= timedelta(days=MAX_DAYS):
        raise error(422, f"date: the window must be positive and at most {MAX_DAYS} days")
    return start, end


def _codes(code: str | None) -> set[str]:
    """``code`` as FHIR sends it: a comma-separated list of ``[system|]code``."""
    if not code:
        return {fhir.READING, *fhir.SUMMARY_CODES}
    wanted = {c.split("|")[-1] for c in code.split(",")}
    known = {fhir.READING, *fhir.SUMMARY_CODES}
    if not wanted <= known:
        raise error(422, f"code: supported are {', '.join(sorted(known))}")
    return wanted


def _profile_id(reference: str) -> uuid.UUID:
    try:
        return uuid.UUID(reference.removeprefix("Patient/"))
    except ValueError:
        raise error(404, "patient not found") from None


async def _granted(
    pool: asyncpg.Pool, user_id: uuid.UUID, profile_id: uuid.UUID, scope: str
) -> None:
    grant = await access.profile_grant(pool, user_id, profile_id)
    if grant is None or not grant.allows(scope):
        refuse(grant is not None, scope, "patient")


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/fhir/r4"


Patient = Annotated[str, Query(description="`Patient/<profile id>` or the id", max_length=100)]
Dates = Annotated[
    list[str] | None,
    Query(alias="date", description="ge/gt/le/lt/eq + date(Time); default the last 14 days"),
]


@dataclass(frozen=True, slots=True)
class PatientSearch:
    profile_id: uuid.UUID
    start: datetime
    end: datetime


def patient_search(default_days: int):
    """Dependency: a search's patient (the caller needs `readings` on it; the read is
    audited) and its date window (default the last ``default_days``)."""

    async def dependency(
        request: Request,
        background: BackgroundTasks,
        user_id: CallerId,
        pool: Pool,
        patient: Patient,
        dates: Dates = None,
    ) -> PatientSearch:
        pid = _profile_id(patient)
        await _granted(pool, user_id, pid, "readings")
        record_read(request, background, pool, user_id, pid)
        return PatientSearch(pid, *window(dates, datetime.now(UTC), default_days))

    return dependency


Search = Annotated[PatientSearch, Depends(patient_search(DEFAULT_DAYS))]
ReportSearch = Annotated[PatientSearch, Depends(patient_search(REPORT_DAYS))]


@router.get(
    "/metadata",
    response_model=FhirResource,
    summary="FHIR CapabilityStatement: what this FHIR endpoint supports",
    responses=responses(),
)
async def metadata() -> dict[str, Any]:
    """Public, as FHIR requires. Declares the CGM guide's data receiver (the
    `$submit-cgm-bundle` operation) and the searches above."""
    return fhir.capability_statement()


@router.get(
    "/Patient/{profile_id}",
    response_model=FhirResource,
    summary="FHIR Patient: a profile",
    responses=responses(401, 403, 404),
)
async def get_patient(
    profile_id: Annotated[uuid.UUID, Path(description="The profile's id")],
    user_id: CallerId,
    pool: Pool,
) -> dict[str, Any]:
    await _granted(pool, user_id, profile_id, "readings")
    row = await profiles.get_profile(pool, profile_id)
    if row is None:
        raise error(404, "profile not found")
    return fhir.patient(profile_id, row["name"])


@router.get(
    "/Device/{device_id}",
    response_model=FhirResource,
    summary="FHIR Device: a sensor",
    responses=responses(401, 403, 404),
)
async def get_device(
    device_id: Annotated[uuid.UUID, Path(description="The device's id")],
    user_id: CallerId,
    pool: Pool,
) -> dict[str, Any]:
    found = await access.device_grant(pool, user_id, device_id)
    if found is None or not found[1].allows("readings"):
        refuse(found is not None, "readings", "device")
    return fhir.device(dict(found[0]))


async def _summaries(
    pool: asyncpg.Pool, pid: uuid.UUID, start: datetime, end: datetime
) -> list[dict]:
    """The summary Observations: /stats' computation over the same window."""
    loaded = await load_series(pool, pid, start - (end - start), end, None)
    g = loaded.get("glucose")
    if g is None:
        return []
    section = await run_in_threadpool(
        glucose_section, g.device_ids, g.ts, g.values, start.timestamp(), end.timestamp(),
        g.interval_s,
    )  # fmt: skip
    return fhir.summaries(pid, section.current.model_dump(), start, end)


async def _readings(
    pool: asyncpg.Pool, pid: uuid.UUID, start: datetime, end: datetime, count: int
) -> list:
    out: list[dict[str, Any]] = []
    glucose = [d["id"] for d in await history.profile_devices(pool, pid) if d["kind"] == "glucose"]
    for d in glucose:
        rows = await readings.list_readings(pool, d, start, end, count - len(out))
        out += [fhir.reading(pid, d, r["ts"], r["value"]) for r in rows]
        if len(out) >= count:
            break
    return out


@router.get(
    "/Observation",
    response_model=FhirBundle,
    summary="FHIR Observation search: CGM readings and summaries of a patient",
    responses=responses(401, 403, 404, 422),
)
async def search_observations(
    request: Request,
    pool: Pool,
    found: Search,
    code: Annotated[
        str | None, Query(description="LOINC codes, comma-separated; default all", max_length=300)
    ] = None,
    count: Annotated[int, Query(alias="_count", ge=1, le=50_000)] = 10_000,
) -> dict[str, Any]:
    """Readings (LOINC 99504-3, mg/dL) in the window, oldest first, and the summaries
    of the window: mean glucose 97507-8, times in ranges 106793-3 (components 104642-4,
    104641-6, 97510-2, 104640-8, 104639-0), GMI 97506-0, CV 104638-2, days of wear
    104636-6, sensor active 104637-4; the same numbers as `/v1/profiles/{id}/stats`."""
    pid, start, end = found.profile_id, found.start, found.end
    wanted = _codes(code)
    entries: list[dict] = []
    if fhir.READING in wanted:
        entries += await _readings(pool, pid, start, end, count)
    if wanted & set(fhir.SUMMARY_CODES):
        summary = await _summaries(pool, pid, start, end)
        entries += [s for s in summary if s["code"]["coding"][0]["code"] in wanted]
    return fhir.bundle(entries, _base(request))


@router.get(
    "/DiagnosticReport",
    response_model=FhirBundle,
    summary="FHIR DiagnosticReport: the CGM summary report (PDF) with its summaries",
    responses=responses(401, 403, 404, 422),
)
async def search_reports(request: Request, pool: Pool, found: ReportSearch) -> dict[str, Any]:
    """The report of the window (default the last 15 days) as a DiagnosticReport (LOINC
    107931-8) whose `presentedForm` is the PDF, followed by the summary Observations it
    references."""
    pid, start, end = found.profile_id, found.start, found.end
    days = max(1, round((end - start).total_seconds() / 86_400))
    rep, loaded = await load_report(pool, pid, days, end)
    pdf = await run_in_threadpool(
        render_report_pdf, rep, loaded.get("glucose"), loaded.get("temperature"), "a4"
    )
    summary = await _summaries(pool, pid, end - timedelta(days=days), end)
    report = fhir.report(pid, pdf, end - timedelta(days=days), end, summary)
    return fhir.bundle([report, *summary], _base(request))


_SUBMISSION = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object", "description": "A FHIR Bundle or Parameters"},
            "example": {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [
                    {
                        "resource": fhir.reading(
                            uuid.UUID(int=1),
                            uuid.UUID(int=2),
                            datetime(2026, 11, 24, 7, 15, tzinfo=UTC),
                            112.0,
                        )
                    }
                ],
            },
        }
    },
}


@router.post(
    "/$submit-cgm-bundle",
    response_model=FhirResource,
    summary="FHIR $submit-cgm-bundle: import a CGM data submission bundle",
    responses=responses(401, 403, 404, 413, 422, 503),
    openapi_extra={"requestBody": _SUBMISSION},
)
async def submit_cgm_bundle(
    request: Request,
    user_id: CallerId,
    pool: Pool,
    shards: Router,
    config: Config,
    patient: Annotated[
        str | None,
        Query(description="Store into this profile; default the readings' subject", max_length=100),
    ] = None,
) -> dict[str, Any]:
    """Body: the CGM data submission Bundle (or a Parameters resource holding it). Its
    sensor readings (99504-3) are stored as history (no alerts) on the profile's
    `fhir-import` device; re-submitting stores nothing twice. Summaries, Patient and
    Device entries are not stored: Vigil computes summaries from the readings. Needs the
    `manage` scope on the profile. Answers an OperationOutcome with the counts."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise error(413, f"body larger than {MAX_BODY_BYTES // 1_000_000} MB")
    try:
        body = loads_strict(raw)
    except JsonRefused as refused:
        raise error(422, f"body: {refused.msg}") from None
    except ValueError:
        raise error(422, "body: not valid JSON") from None
    try:
        got = fhir.submitted_readings(body, MAX_SUBMITTED)
    except fhir.BundleError as exc:
        raise error(422, str(exc)) from None
    if patient is None and len(got.subjects) != 1:
        raise error(422, "subject: the readings name several patients; send ?patient=")
    pid = _profile_id(patient or next(iter(got.subjects), ""))
    await _granted(pool, user_id, pid, "manage")
    kind = SensorKind.GLUCOSE
    device_id = await devices.find_or_create(
        pool, pid, kind.value, SUBMIT_SERIAL, "FHIR submission", spec_for(kind).default_interval_s
    )
    ts_us = np.array([int(t.timestamp() * 1e6) for t in got.ts], dtype=np.int64)
    values = np.array(got.mgdl, dtype=np.float64)
    accepted = duplicates = 0
    batch = config.max_batch_readings
    for start in range(0, ts_us.size, batch):
        part = slice(start, start + batch)
        try:
            a, d = await send_history(shards, device_id, ts_us[part], values[part])
        except RuntimeError as exc:
            raise error(503, str(exc), {"Retry-After": "5"}) from None
        accepted, duplicates = accepted + a, duplicates + d
    text = (
        f"{accepted} readings stored, {duplicates} already stored,"
        f" {got.other} other entries not stored (summaries are computed from readings)"
    )
    return {
        "resourceType": "OperationOutcome",
        "issue": [{"severity": "information", "code": "informational", "diagnostics": text}],
        "extension": [
            {"url": "urn:vigil:accepted", "valueInteger": accepted},
            {"url": "urn:vigil:duplicates", "valueInteger": duplicates},
        ],
    }
