"""Readings: upload a batch (acknowledged after commit), read history, read the latest value."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import datetime, timedelta
from typing import Annotated, Any

import asyncpg
import numpy as np
from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import AwareDatetime, BaseModel, Field, TypeAdapter
from starlette.datastructures import State

from actors import metrics
from actors.router import ShardRouter, ShardUnavailable
from algorithms.sensors import SensorKind, spec_for
from algorithms.temperature import BodySite
from algorithms.trend import Direction
from api.batch_parse import EPOCH, Batch, micros
from api.config import ApiConfig
from api.deps import CallerId, Config, Pool, Router, refuse
from api.errors import (
    DATABASE_DOWN_DETAIL,
    DISK_FULL_DETAIL,
    ErrorItem,
    check_window,
    error,
    responses,
)
from api.request_id import current as current_request_id
from api.routes.audit import read_audit
from api.routes.devices import DeviceId, DeviceOut
from api.routes.upload_tokens import UploadableDevice
from api.schemas import RequestModel, StrictJsonRoute, Timestamp, lenient_enum
from storage import body_sites, readings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/devices/{device_id}", tags=["readings"], route_class=StrictJsonRoute)


class ReadingIn(RequestModel):
    ts: Timestamp = Field(
        description="When the sensor measured, ISO 8601 with a UTC offset, 2000 or later",
        examples=["2026-11-24T07:15:00+01:00"],
    )
    value: float = Field(
        allow_inf_nan=False,
        description="mg/dL for glucose, °C for temperature",
        examples=[112.0],
    )


class ReadingsUpload(RequestModel):
    readings: list[ReadingIn] = Field(
        description="At most 10,000 readings; order does not matter",
        examples=[[{"ts": "2026-11-24T07:15:00+01:00", "value": 112.0}]],
    )
    body_site: BodySite | None = lenient_enum(
        default=None,
        description="Temperature devices only: where on the body the sensor sits for these"
        " readings (a thermometer's Temperature Type); kept from the batch's first reading"
        " until a batch names another. Omitted: unchanged",
        examples=["axilla"],
    )


class UploadResult(BaseModel):
    accepted: int = Field(description="Readings newly stored", examples=[99])
    duplicates: int = Field(
        description="Readings already stored (re-sent), not stored twice", examples=[1]
    )


class ReadingOut(BaseModel):
    ts: datetime
    value: float = Field(examples=[112.0])
    rate_per_min: float | None = Field(
        description="Rate of change, unit per minute", examples=[-1.4]
    )
    direction: Direction | None = Field(examples=["FortyFiveDown"])
    body_site: BodySite | None = Field(
        None,
        description="Temperature devices: where on the body the sensor sat at `ts`, as its"
        " uploader reported (null for glucose, or before any report)",
        examples=["axilla"],
    )


class Trend(BaseModel):
    rate_per_min: float | None = Field(examples=[-1.4])
    direction: Direction = Field(examples=["FortyFiveDown"])


class LatestReading(BaseModel):
    ts: datetime
    value: float = Field(examples=[112.0])
    unit: str = Field(examples=["mg/dL"])
    trend: Trend
    body_site: BodySite | None = Field(
        None, description="As in the readings list (temperature devices)", examples=[None]
    )


def _rounded(rate: float | None) -> float | None:
    """Rates are stored as float4; three decimals is what they carry."""
    return None if rate is None else round(rate, 3)


def batch_of(body: ReadingsUpload) -> Batch:
    """A validated upload as its shard takes it."""
    n = len(body.readings)
    return Batch(
        np.fromiter((micros(r.ts) for r in body.readings), dtype=np.int64, count=n),
        np.fromiter((r.value for r in body.readings), dtype=np.float64, count=n),
        None if body.body_site is None else str(body.body_site),
    )


class InvalidReadings(Exception):
    """A batch with readings the sensor cannot have produced; nothing of it was stored."""

    def __init__(self, items: list[ErrorItem]) -> None:
        super().__init__(f"{len(items)} invalid reading(s)")
        self.items = items  # loc relative to the batch: ["readings", i, field]

    def response(self) -> JSONResponse:
        """The HTTP upload's 422 (``loc`` from the request's body)."""
        items = [ErrorItem(loc=["body", *i.loc], msg=i.msg, type=i.type) for i in self.items]
        return JSONResponse(status_code=422, content={"detail": [i.model_dump() for i in items]})


# What a refused upload is told, by the shard's reason (``WriteBuffer.cause``).
BUSY = {"disk_full": DISK_FULL_DETAIL, "down": DATABASE_DOWN_DETAIL}


def body_site_problem(batch: Batch, kind: SensorKind | str) -> list[ErrorItem]:
    """A body site names where a temperature sensor sits: refused for other devices (``loc``
    relative to the batch, like ``InvalidReadings``)."""
    if batch.body_site is None or kind == SensorKind.TEMPERATURE:
        return []
    msg = f"a {kind} device has no body site (only temperature devices report one)"
    return [ErrorItem(loc=["body_site"], msg=msg, type="value_error")]


async def keep_body_site(pool: asyncpg.Pool, device_id: uuid.UUID, batch: Batch) -> None:
    """After the batch is stored: the device sits at its body site from its first reading."""
    if batch.body_site is not None and len(batch):
        since = EPOCH + timedelta(microseconds=int(batch.ts_us.min()))
        await body_sites.record(pool, device_id, since, batch.body_site)


async def store_batch(
    batch: Batch,
    device_id: uuid.UUID,
    shards: ShardRouter,
    config: ApiConfig,
    *,
    log_upload: bool = True,
) -> UploadResult:
    """Hand a batch to the device's shard and wait for its commit. Raises an HTTP error
    (413, 404, 503 with Retry-After) or ``InvalidReadings``; shared by the HTTP upload and
    the WebSocket ingest. ``log_upload``: one ``upload`` line for the request (a stream's
    batches are counted in its closing line instead: a line per message is most of what a
    one-reading batch costs the replica besides its frames)."""
    received_us = time.time_ns() // 1000
    n = len(batch)
    if n > config.max_batch_readings:
        raise error(413, f"{n} readings in one batch; at most {config.max_batch_readings}")
    try:
        outcome = await shards.ingest(
            device_id,
            batch.ts_us,
            batch.values,
            received_us,
            request_id=current_request_id(),
            body_site=batch.body_site,
        )
    except ShardUnavailable as down:
        log.warning("shard %d not answering; device %s told to retry", down.index, device_id)
        metrics.inc("vigil_backpressure_total", reason="shard_unreachable")
        raise error(503, down.detail, {"Retry-After": str(down.retry_after_s)}) from None
    except Exception:
        log.exception("shard call failed for device %s", device_id)
        metrics.inc("vigil_backpressure_total", reason="shard_unreachable")
        raise error(503, "ingest temporarily unavailable", {"Retry-After": "5"}) from None
    if log_upload:
        log.info("upload", extra={"readings": n, "outcome": outcome.status})
    if outcome.status == "ok":
        return UploadResult(accepted=outcome.accepted, duplicates=outcome.duplicates)
    if outcome.status == "rejected":
        raise InvalidReadings(
            [
                ErrorItem(loc=["readings", *p.loc()], msg=p.message, type="value_error")
                for p in outcome.problems
            ]
        )
    if outcome.status == "unknown_device":
        raise error(404, "device not found")
    if outcome.status == "moved":
        raise error(
            503,
            "this device is moving to another shard; retry shortly",
            {"Retry-After": str(outcome.retry_after_s)},
        )
    raise error(
        503,
        BUSY.get(outcome.cause, "the database is not keeping up; retry later"),
        {"Retry-After": str(outcome.retry_after_s)},
    )


@router.post(
    "/readings",
    response_model=UploadResult,
    summary="Upload a batch of readings",
    responses=responses(401, 403, 404, 413, 422, 503),
)
async def upload_readings(
    body: ReadingsUpload, device: UploadableDevice, shards: Router, config: Config, pool: Pool
) -> UploadResult | JSONResponse:
    """Send a user's access token (manager, or follower with `manage`) or the device's
    upload token. Stores the batch and answers once it is committed. Idempotent: readings already
    stored (same device and timestamp) are counted as `duplicates`, never stored twice.
    If any reading is invalid the whole batch is rejected (422) and nothing is stored.
    Devices sending often (every few seconds) can stream batches over the WebSocket
    `/v1/devices/{device_id}/readings/stream` instead (same batches, same answers).
    A temperature device's uploader may name its `body_site` (422 for other devices)."""
    return await upload_answer(batch_of(body), device, shards, config, pool)


async def upload_answer(
    batch: Batch,
    device: DeviceOut,
    shards: ShardRouter,
    config: ApiConfig,
    pool: asyncpg.Pool,
) -> UploadResult | JSONResponse:
    """An authorised HTTP upload's answer (the route's, and ``api.fast_uploads``'s): its
    body site checked against the device's kind, the batch stored, the body site kept."""
    wrong_site = body_site_problem(batch, device.kind)
    if wrong_site:
        raise RequestValidationError(
            [{**i.model_dump(), "loc": ("body", *i.loc)} for i in wrong_site]
        )
    try:
        result = await store_batch(batch, device.id, shards, config)
    except InvalidReadings as invalid:
        return invalid.response()
    await keep_body_site(pool, device.id, batch)
    return result


def _allowed(read: readings.AuditedRead) -> list[asyncpg.Record]:
    """The rows of a read the grant allows; 404 or 403 as ``device_with`` answers."""
    if read.grant is None or not read.grant.allows("readings"):
        refuse(read.grant is not None, "readings", "device")
    return read.rows


_ANY: TypeAdapter[Any] = TypeAdapter(Any)


def _json(payload: object) -> Response:
    """A hot read's answer, written straight to JSON by pydantic-core (the format the
    response models give: ``Z`` times, the same floats) without FastAPI validating again
    what the statement returned; the route's ``response_model`` still documents it."""
    return Response(_ANY.dump_json(payload), media_type="application/json")


READINGS_LIMIT_MAX = 10_000
READINGS_LIMIT_DEFAULT = 1000


@router.get(
    "/readings",
    response_model=list[ReadingOut],
    summary="Read a device's readings in time order",
    responses=responses(401, 403, 404, 422),
)
async def get_readings(
    device_id: DeviceId,
    user_id: CallerId,
    request: Request,
    start: Annotated[AwareDatetime | None, Query(description="Inclusive lower bound")] = None,
    end: Annotated[AwareDatetime | None, Query(description="Exclusive upper bound")] = None,
    limit: Annotated[int, Query(ge=1, le=READINGS_LIMIT_MAX)] = READINGS_LIMIT_DEFAULT,
) -> Response:
    check_window(start, end)
    read = readings.ReadRequest(
        read_audit(request, user_id), device_id, "readings", start=start, end=end, limit=limit
    )
    return await readings_answer(request.app.state, read)


async def readings_answer(state: State, request: readings.ReadRequest) -> Response:
    """``GET …/readings``'s answer (the route's, and ``api.fast_reads``'): the access check,
    the audit entry and the read are one statement, sent with the replica's other reads."""
    read = await state.reads.ask(request)
    rows = _allowed(read)
    sites = await _sites(state.pool, read, rows)
    return _json(
        [
            {
                "ts": r["ts"],
                "value": r["value"],
                "rate_per_min": _rounded(r["rate_per_min"]),
                "direction": r["direction"],
                "body_site": sites.at(r["ts"]),
            }
            for r in rows
        ]
    )


async def _sites(
    pool: asyncpg.Pool, read: readings.AuditedRead, rows: list[asyncpg.Record]
) -> body_sites.Sites:
    """The body-site periods the rows fall in (a second query for temperature devices only)."""
    if not rows or read.device is None or read.device["kind"] != SensorKind.TEMPERATURE:
        return body_sites.Sites([])
    last = max(rows[0]["ts"], rows[-1]["ts"])
    return await body_sites.periods(pool, read.device["id"], last + timedelta(microseconds=1))


@router.get(
    "/latest",
    response_model=LatestReading,
    summary="The latest reading with its trend",
    responses=responses(401, 403, 404),
)
async def latest(device_id: DeviceId, user_id: CallerId, request: Request) -> Response:
    read = readings.ReadRequest(read_audit(request, user_id), device_id, "readings", latest=True)
    return await latest_answer(request.app.state, read)


async def latest_answer(state: State, request: readings.ReadRequest) -> Response:
    """``GET …/latest``'s answer (the route's, and ``api.fast_reads``'), as
    :func:`readings_answer`."""
    read = await state.reads.ask(request)
    rows = _allowed(read)
    if not rows:
        raise error(404, "no readings yet")
    row = rows[0]
    assert read.device is not None  # a grant comes with its device
    sites = await _sites(state.pool, read, rows)
    return _json(
        {
            "ts": row["ts"],
            "value": row["value"],
            "unit": spec_for(read.device["kind"]).unit,
            "trend": {
                "rate_per_min": _rounded(row["rate_per_min"]),
                "direction": row["direction"] or Direction.NOT_COMPUTABLE.value,
            },
            "body_site": sites.at(row["ts"]),
        }
    )
