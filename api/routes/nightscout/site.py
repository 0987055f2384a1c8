"""A profile's Nightscout v1 site: ``/ns/<site-id>/api/v1/...`` and ``/ns/<site-id>/pebble``.

Speaks what xDrip+, AndroidAPS, Loop's NightscoutKit, Nightguard and watch faces send and
read (see docs/interop.md). Not part of Vigil's OpenAPI document: it is Nightscout's API,
described by Nightscout. Entries enter through the same ingest path as every reading (the
profile's Nightscout-uploader device, so its device actor evaluates the alert rules).
"""

from __future__ import annotations

import hmac
import json
import uuid
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request
from fastapi.responses import JSONResponse

from algorithms.rules import RuleKind, effective_rules
from algorithms.sensors import MGDL_PER_MMOLL, SensorKind
from api import login_guard
from api.config import ApiConfig
from api.deps import Config, Pool, Router
from api.errors import error
from api.routes.audit import record_read
from api.routes.nightscout import documents as ns
from api.routes.nightscout.manage import secret_hash
from api.routes.readings import InvalidReadings, ReadingIn, ReadingsUpload, batch_of, store_batch
from storage import alerts, events, nightscout
from storage.nightscout import Window

router = APIRouter(prefix="/ns/{site_id}", include_in_schema=False)
VERSION = "15.0.2"  # the Nightscout version whose v1 behaviour this follows


@dataclass(frozen=True, slots=True)
class SiteAccess:
    site: nightscout.Site
    authenticated: bool
    can_write: bool
    role: str  # for verifyauth: "admin" (secret), "token", or "" (none)
    actor_id: uuid.UUID | None = None  # audited as: the token, or the uploader device


def _credentials(request: Request) -> tuple[str | None, str | None]:
    """(secret, token) as Nightscout clients send them: ``api-secret`` (SHA-1 hex or the
    secret; ``token=<t>`` there is a token), ``?token=``, ``Authorization: Bearer``."""
    secret = request.headers.get("api-secret")
    token = request.query_params.get("token")
    if secret and secret.startswith("token="):
        token, secret = secret[len("token=") :], None
    auth = request.headers.get("authorization", "")
    if not token and auth[:7].lower() == "bearer ":
        token = auth[7:].strip()
    return secret or request.query_params.get("secret"), token or None


async def site_access(
    site_id: Annotated[str, Path(max_length=64)],
    request: Request,
    background: BackgroundTasks,
    pool: Pool,
    config: Config,
) -> SiteAccess:
    """The site and what the caller may do on it; a GET with a credential is audited (the
    person sees it at `GET /v1/me/audit`). A wrong secret or token is 401 and counts toward
    the login lockout (of the site and of the client address)."""
    site = await nightscout.find_site(pool, site_id)
    if site is None:
        raise error(404, "no Nightscout site here")
    access = await _authenticate(site, request, pool, config)
    if access.actor_id is not None:
        record_read(
            request, background, pool, access.actor_id, site.profile_id, actor_kind="nightscout"
        )
    return access


async def _authenticate(
    site: nightscout.Site, request: Request, pool: asyncpg.Pool, config: ApiConfig
) -> SiteAccess:
    secret, token = _credentials(request)
    if secret is None and token is None:
        return SiteAccess(site, False, False, "")
    key, address = f"nightscout:{site.site_id}", login_guard.client_address(request)
    await login_guard.check(pool, key, address)
    digest = secret_hash(secret if secret is not None else token or "")
    if secret is not None and hmac.compare_digest(digest, site.secret_hash):
        return SiteAccess(site, True, True, "admin", site.device_id)
    # A token, sent as itself or (xDrip+ follower: "https://<token>@host") as its SHA-1.
    found = await nightscout.find_token(pool, site.profile_id, digest)
    if found is not None:
        return SiteAccess(site, True, found["can_write"], "token", found["id"])
    await login_guard.failed(pool, config, key, address)
    raise error(401, "Unauthorized: wrong API secret or token")


Access = Annotated[SiteAccess, Depends(site_access)]


def readable(access: SiteAccess) -> nightscout.Site:
    if not access.authenticated:
        raise error(401, "Unauthorized: send the API secret or an access token")
    return access.site


def writable(access: SiteAccess) -> nightscout.Site:
    site = readable(access)
    if not access.can_write:
        raise error(403, "this access token may only read")
    return site


def _query(request: Request, time_fields: tuple[str, ...]) -> ns.Query:
    try:
        return ns.parse_query(list(request.query_params.multi_items()), time_fields)
    except ns.DocumentError as exc:
        raise error(400, str(exc)) from None


def _without_id(doc: dict[str, Any]) -> dict[str, Any]:
    """A document as kept: everything the client sent but its own ``_id`` (Vigil's is used)."""
    return {k: v for k, v in doc.items() if k != "_id"}


def _window(q: ns.Query) -> Window:
    return Window(q.lo, q.lo_inclusive, q.hi, q.hi_inclusive, q.count)


async def _documents(request: Request, what: str) -> list[dict[str, Any]]:
    try:
        return ns.parse_body(await request.body(), what)
    except ns.DocumentError as exc:
        raise error(400, str(exc)) from None


# --- status, auth -----------------------------------------------------------------------


async def _thresholds(pool: asyncpg.Pool, profile_id: uuid.UUID) -> dict[str, float | None]:
    row = await alerts.get_settings(pool, profile_id)
    stored = row["rules"] if row else None
    if isinstance(stored, str):
        stored = json.loads(stored)
    rules = {r.kind: r.threshold for r in effective_rules(stored, SensorKind.GLUCOSE)}
    return {
        "bgHigh": rules[RuleKind.HIGH],
        "bgTargetTop": 180,
        "bgTargetBottom": rules[RuleKind.LOW],
        "bgLow": rules[RuleKind.URGENT_LOW],
    }


@router.get("/api/v1/status.json")
@router.get("/api/v1/status")
async def status(access: Access, pool: Pool) -> dict[str, Any]:
    site = readable(access)
    now = datetime.now(UTC)
    return {
        "status": "ok",
        "name": "nightscout",
        "version": VERSION,
        "serverTime": ns.iso(now),
        "serverTimeEpoch": ns.ms(now),
        "apiEnabled": True,
        "careportalEnabled": True,
        "boluscalcEnabled": False,
        "head": "vigil",
        "settings": {
            "units": "mg/dl",
            "timeFormat": 24,
            "customTitle": "Vigil",
            "theme": "colors",
            "alarmUrgentHigh": True,
            "alarmHigh": True,
            "alarmLow": True,
            "alarmUrgentLow": True,
            "enable": ["careportal", "rawbg", "iob", "cob", "devicestatus"],
            "thresholds": await _thresholds(pool, site.profile_id),
            "authDefaultRoles": "denied",
            "DEFAULT_FEATURES": ["bgnow", "delta", "direction", "timeago", "devicestatus"],
        },
        "extendedSettings": {"devicestatus": {"advanced": True}},
        "authorized": None,
    }


@router.get("/api/v1/verifyauth")
async def verifyauth(access: Access) -> dict[str, Any]:
    """Always 200, as in Nightscout: ``message.canRead`` / ``canWrite`` tell the app."""
    ok = access.authenticated
    return {
        "status": 200,
        "message": {
            "canRead": ok,
            "canWrite": access.can_write,
            "isAdmin": access.role == "admin",
            "message": "OK" if ok else "UNAUTHORIZED",
            "rolefound": "FOUND" if ok else "NOTFOUND",
            "permissions": "ROLE" if ok else "DEFAULT",
        },
    }


@router.get("/api/v1/experiments/test")
async def experiments_test(access: Access) -> dict[str, str]:
    """Uploaders call it to check that their secret lets them write."""
    writable(access)
    return {"status": "ok"}


# --- entries ----------------------------------------------------------------------------


async def _entries(pool: asyncpg.Pool, site: nightscout.Site, q: ns.Query) -> list[dict[str, Any]]:
    """sgv entries from every glucose device of the profile, plus stored mbg / cal, newest
    first, at most ``q.count``."""
    types = q.types or ns.ENTRY_TYPES
    window = _window(q)
    out: list[dict[str, Any]] = []
    if "sgv" in types:
        rows = await nightscout.glucose_readings(pool, site.profile_id, window)
        out += [ns.sgv_out(dict(r)) for r in rows]
    others = [t for t in types if t != "sgv"]
    if others:
        rows = await nightscout.documents(pool, site.profile_id, "entries", others, window)
        out += [ns.stored_entry_out(dict(r), nightscout.decode_doc(r["doc"])) for r in rows]
    out.sort(key=lambda e: e["date"], reverse=True)
    return out[: q.count]


@router.get("/api/v1/entries.json")
@router.get("/api/v1/entries")
async def get_entries(access: Access, pool: Pool, request: Request) -> list[dict[str, Any]]:
    site = readable(access)
    return await _entries(pool, site, _query(request, ("date", "dateString")))


@router.get("/api/v1/entries/{spec}")
async def get_entries_spec(
    spec: Annotated[str, Path(max_length=64)], access: Access, pool: Pool, request: Request
) -> list[dict[str, Any]]:
    """``sgv`` / ``mbg`` / ``cal`` (with or without ``.json``), ``current`` (the newest
    sgv), or an entry's id."""
    site = readable(access)
    spec = spec.removesuffix(".json")
    q = _query(request, ("date", "dateString"))
    if spec == "current":
        return await _entries(pool, site, ns.Query(types=("sgv",), count=1))
    if spec in ns.ENTRY_TYPES:
        return await _entries(pool, site, replace(q, types=(spec,)))
    return await _entry_by_id(pool, site, spec)


async def _entry_by_id(
    pool: asyncpg.Pool, site: nightscout.Site, entry_id: str
) -> list[dict[str, Any]]:
    ts = ns.id_time(entry_id)
    if ts is not None:
        window = Window(ts, True, ts + timedelta(milliseconds=1), False, 50)
        rows = await nightscout.glucose_readings(pool, site.profile_id, window)
        return [e for e in (ns.sgv_out(dict(r)) for r in rows) if e["_id"] == entry_id]
    raise error(404, f"no entry {entry_id!r} (ids are 24 hexadecimal digits)")


@router.post("/api/v1/entries.json")
@router.post("/api/v1/entries")
async def post_entries(
    access: Access, pool: Pool, shards: Router, config: Config, request: Request
) -> list[dict[str, Any]]:
    """sgv entries become readings of the profile's Nightscout-uploader device (the same
    ingest path as every reading: validated, de-duplicated on time, alerts evaluated);
    mbg and cal entries are kept as sent (the same type and date replaces)."""
    site = writable(access)
    docs = await _documents(request, "entries")
    now = datetime.now(UTC)
    try:
        parsed = [ns.entry_in(d, i, now) for i, d in enumerate(docs)]
    except ns.DocumentError as exc:
        raise error(422, str(exc)) from None
    sgvs = [e for e in parsed if e.type == "sgv" and e.value is not None]  # sgv: always
    if sgvs:
        body = ReadingsUpload(
            readings=[ReadingIn(ts=e.ts, value=e.value) for e in sgvs if e.value is not None]
        )
        try:
            await store_batch(batch_of(body), site.device_id, shards, config)
        except InvalidReadings as invalid:
            item = invalid.items[0]
            where = f"entries[{sgvs[int(item.loc[1])].index}]"
            field = "sgv" if item.loc[2] == "value" else "date"
            raise error(422, f"{where}.{field}: {item.msg}") from None
    others = [e for e in parsed if e.type != "sgv"]
    ids = await nightscout.upsert_entry_documents(
        pool, site.profile_id, [(e.type, e.ts, _without_id(e.doc)) for e in others]
    )
    by_index = dict(zip((e.index for e in others), map(str, ids), strict=True))
    return [  # an sgv's id is its reading's (time and device)
        {
            **e.doc,
            "_id": by_index.get(e.index) or ns.entry_id(e.ts, nightscout.UPLOADER_SERIAL),
            "date": ns.ms(e.ts),
            "dateString": ns.iso(e.ts),
        }
        for e in parsed
    ]


# --- treatments -------------------------------------------------------------------------


@router.get("/api/v1/treatments.json")
@router.get("/api/v1/treatments")
async def get_treatments(access: Access, pool: Pool, request: Request) -> list[dict[str, Any]]:
    site = readable(access)
    q = _query(request, ("created_at", "date", "mills"))
    rows = await nightscout.treatments(pool, site.profile_id, _window(q))
    return [ns.treatment_out(r) for r in rows]


def _treatments(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    now = datetime.now(UTC)
    try:
        return [ns.treatment_fields(d, i, now) for i, d in enumerate(docs)]
    except ns.DocumentError as exc:
        raise error(422, str(exc)) from None


@router.post("/api/v1/treatments.json")
@router.post("/api/v1/treatments")
async def post_treatments(access: Access, pool: Pool, request: Request) -> list[dict[str, Any]]:
    """carbs -> meal, insulin -> insulin, Exercise -> exercise, Note -> note, anything else
    a custom event; the document is kept as sent. A re-sent treatment (same client id, or
    same eventType and time) is stored once."""
    site = writable(access)
    docs = await _documents(request, "treatments")
    out = []
    for doc, fields in zip(docs, _treatments(docs), strict=True):
        kept = _without_id(doc)
        row, _ = await events.create_event(
            pool, site.profile_id, site.manager_id, **fields,
            idempotency_key=ns.treatment_key(doc, fields), nightscout=kept,
        )  # fmt: skip
        out.append(ns.treatment_out({**row, "nightscout": kept}))
    return out


def _event_id(value: Any) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise error(404, f"no treatment {value!r}") from None


@router.put("/api/v1/treatments.json")
@router.put("/api/v1/treatments")
async def put_treatment(access: Access, pool: Pool, request: Request) -> dict[str, Any]:
    """Replace a treatment, found by its ``_id``."""
    site = writable(access)
    docs = await _documents(request, "treatment")
    if len(docs) != 1:
        raise error(400, "treatment: send one treatment object")
    doc = docs[0]
    fields = _treatments(docs)[0]
    event_id = _event_id(doc.get("_id"))
    kept = _without_id(doc)
    if not await nightscout.replace_treatment(pool, site.profile_id, event_id, fields, kept):
        raise error(404, f"no treatment {event_id}")
    return ns.treatment_out({"id": event_id, **fields, "nightscout": kept})


@router.delete("/api/v1/treatments/{treatment_id}")
async def delete_treatment(
    treatment_id: Annotated[str, Path(max_length=64)], access: Access, pool: Pool
) -> dict[str, Any]:
    site = writable(access)
    if not await events.delete_event(pool, site.profile_id, _event_id(treatment_id)):
        raise error(404, f"no treatment {treatment_id!r}")
    return {"n": 1, "ok": 1}


# --- devicestatus -----------------------------------------------------------------------


@router.get("/api/v1/devicestatus.json")
@router.get("/api/v1/devicestatus")
async def get_devicestatus(access: Access, pool: Pool, request: Request) -> list[dict[str, Any]]:
    site = readable(access)
    q = _query(request, ("created_at", "date"))
    rows = await nightscout.documents(pool, site.profile_id, "devicestatus", None, _window(q))
    return [ns.devicestatus_out(dict(r), nightscout.decode_doc(r["doc"])) for r in rows]


@router.post("/api/v1/devicestatus.json")
@router.post("/api/v1/devicestatus")
async def post_devicestatus(access: Access, pool: Pool, request: Request) -> list[dict[str, Any]]:
    """Kept as sent (loop, openaps, pump, uploader battery: Vigil does not interpret them)."""
    site = writable(access)
    docs = await _documents(request, "devicestatus")
    now = datetime.now(UTC)
    try:
        dated = [(ns.devicestatus_time(d, i, now), _without_id(d)) for i, d in enumerate(docs)]
    except ns.DocumentError as exc:
        raise error(422, str(exc)) from None
    ids = await nightscout.insert_devicestatus(pool, site.profile_id, dated)
    return [
        ns.devicestatus_out({"id": i, "date": date}, doc)
        for i, (date, doc) in zip(ids, dated, strict=True)
    ]


# --- profile, pebble --------------------------------------------------------------------


def _schedule(value: float) -> list[dict[str, Any]]:
    return [{"time": "00:00", "value": value, "timeAsSeconds": 0}]


@router.get("/api/v1/profile.json")
@router.get("/api/v1/profile")
async def profile(access: Access) -> list[dict[str, Any]]:
    """The profile's units, targets (the consensus 70-180 mg/dL range) and time zone; Vigil
    keeps no insulin therapy settings (basal, ISF, carb ratio), so there are none."""
    site = readable(access)
    start = "1970-01-01T00:00:00.000Z"
    store = {
        "units": "mg/dl",
        "timezone": site.timezone,
        "target_low": _schedule(70),
        "target_high": _schedule(180),
        "startDate": start,
    }
    return [
        {
            "_id": site.profile_id.hex[:24],
            "defaultProfile": "Default",
            "store": {"Default": store},
            "startDate": start,
            "mills": 0,
            "units": "mg/dl",
            "created_at": start,
        }
    ]


@router.get("/pebble")
async def pebble(access: Access, pool: Pool, request: Request) -> JSONResponse:
    """The watch-face feed: the newest readings with trend and delta (``count``, default 1;
    ``units=mmol`` for mmol/L)."""
    site = readable(access)
    q = _query(request, ())
    mmol = request.query_params.get("units") == "mmol"
    rows = await nightscout.glucose_readings(pool, site.profile_id, Window(limit=q.count + 1))
    entries = [ns.sgv_out(dict(r)) for r in rows]
    bgs = []
    for newer, older in zip(entries, [*entries[1:], None], strict=True):
        delta = None if older is None else newer["sgv"] - older["sgv"]
        bgs.append(
            {
                "sgv": _units(newer["sgv"], mmol),
                "trend": newer["trend"],
                "direction": newer["direction"],
                "datetime": newer["date"],
                "bgdelta": None if delta is None else _delta(delta, mmol),
                "battery": "",
            }
        )
    now = ns.ms(datetime.now(UTC))
    return JSONResponse({"status": [{"now": now}], "bgs": bgs[: q.count], "cals": []})


def _units(mgdl: float, mmol: bool) -> str:
    return f"{mgdl / MGDL_PER_MMOLL:.1f}" if mmol else str(round(mgdl))


def _delta(mgdl: float, mmol: bool) -> float:
    return round(mgdl / MGDL_PER_MMOLL, 1) if mmol else mgdl
