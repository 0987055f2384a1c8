"""History import (vendor exports in) and Open mHealth export (readings out) of a device.

An import is read whole first (``sensor_ingest.history``): a file that cannot be read
stores nothing. Its readings then go through the device's shard in batches as *history*
(stored and trended, no alert rules), while the import's row records the progress, which
``GET .../imports/{id}`` shows. Re-importing is harmless: every reading already stored is
counted as a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

import asyncpg
import numpy as np
from fastapi import APIRouter, File, Path, Query, UploadFile, status
from pydantic import AwareDatetime, BaseModel, Field
from starlette.concurrency import run_in_threadpool

from actors.router import ShardRouter
from algorithms.sensors import SensorKind
from api.deps import Caller, Config, Pool, Router
from api.errors import check_window, error, responses
from api.routes.devices import ReadableDevice, WritableDevice
from api.schemas import StrictJsonRoute
from sensor_ingest.history import History, HistoryFileError, parse
from storage import imports, profiles, readings

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/devices/{device_id}", tags=["history"], route_class=StrictJsonRoute)
MAX_FILE_BYTES = 50_000_000
BATCH = 5000
_RETRIES = 20
_running: set[asyncio.Task] = set()  # imports in progress in this replica (kept referenced)


class SkippedRow(BaseModel):
    line: int = Field(description="Line of the file (item number for JSON)", examples=[1207])
    reason: str = Field(examples=["'Low': beyond the sensor's reporting range"])


class ImportOut(BaseModel):
    id: uuid.UUID
    device_id: uuid.UUID
    format: Literal["dexcom-clarity", "libreview", "nightscout", "tidepool"] = Field(
        examples=["dexcom-clarity"]
    )
    filename: str | None = Field(examples=["clarity_export_2026-11-29.csv"])
    state: Literal["running", "done", "failed"] = Field(
        description="`running` while stored in batches; `done` or `failed` (see `error`)",
        examples=["done"],
    )
    total: int = Field(description="Readings to store", examples=[25_920])
    processed: int = Field(description="Readings handled so far", examples=[25_920])
    accepted: int = Field(description="Newly stored", examples=[25_900])
    duplicates: int = Field(description="Already stored (an earlier import)", examples=[20])
    ignored: int = Field(description="Rows that are not readings (events, settings)", examples=[9])
    skipped: list[SkippedRow] = Field(description="Readings not stored, with why")
    error: str | None = Field(examples=[None])
    created_at: datetime
    finished_at: datetime | None


class OmhSchemaId(BaseModel):
    namespace: str = Field(examples=["omh"])
    name: str = Field(examples=["blood-glucose"])
    version: str = Field(examples=["4.0"])


class OmhHeader(BaseModel):
    uuid: uuid.UUID
    schema_id: OmhSchemaId
    source_creation_date_time: datetime
    modality: str = Field(examples=["sensed"])


class OmhDataPoint(BaseModel):
    header: OmhHeader
    body: dict[str, Any] = Field(
        examples=[
            {
                "blood_glucose": {"value": 112, "unit": "mg/dL"},
                "effective_time_frame": {"date_time": "2026-11-24T07:15:00Z"},
                "specimen_source": "interstitial fluid",
            }
        ]
    )


def _out(row: dict[str, Any]) -> ImportOut:
    return ImportOut(**{k: row[k] for k in ImportOut.model_fields})


async def _read(file: UploadFile) -> str:
    data = await file.read(MAX_FILE_BYTES + 1)
    if len(data) > MAX_FILE_BYTES:
        raise error(413, f"file larger than {MAX_FILE_BYTES // 1_000_000} MB")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise error(422, "file: not UTF-8 text") from None


@router.post(
    "/import",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=ImportOut,
    summary="Import a history file (Dexcom Clarity, LibreView, Nightscout, Tidepool)",
    responses=responses(401, 403, 404, 409, 413, 422),
)
async def import_history(
    device: WritableDevice,
    caller: Caller,
    pool: Pool,
    shards: Router,
    config: Config,
    file: Annotated[UploadFile, File(description="The export file, as downloaded")],
) -> ImportOut:
    """The format is recognised from the content: Dexcom Clarity CSV, LibreView CSV,
    Nightscout `entries.json`, Tidepool export JSON (`cbg`, `smbg`). CSV times are read in
    the profile's time zone. A file that cannot be read is refused (422 naming the line)
    and nothing is stored; readings outside the sensor's range are listed in `skipped` with
    their line. Answers 202 at once; follow `GET .../imports/{id}` until `state` is `done`.
    Imported readings are history: no alert fires for them."""
    if device.kind != SensorKind.GLUCOSE:
        raise error(409, "history files hold glucose readings: import them to a glucose device")
    text = await _read(file)
    profile = await profiles.get_profile(pool, device.profile_id)
    if profile is None:
        raise error(404, "profile not found")
    now = datetime.now(UTC)
    try:
        history = await run_in_threadpool(parse, text, ZoneInfo(profile["timezone"]), now)
    except HistoryFileError as exc:
        raise error(422, f"file: {exc}") from None
    skipped = [{"line": s.line, "reason": s.reason} for s in history.skipped]
    row = await imports.create(
        pool, device.id, caller.id, history.format, file.filename, len(history.ts),
        history.ignored, skipped,
    )  # fmt: skip
    task = asyncio.get_running_loop().create_task(
        _store(pool, shards, min(BATCH, config.max_batch_readings), row["id"], device.id, history)
    )
    _running.add(task)
    task.add_done_callback(_running.discard)
    return _out(row)


async def _store(
    pool: asyncpg.Pool, shards: ShardRouter, batch: int, import_id: uuid.UUID,
    device_id: uuid.UUID, history: History,
) -> None:  # fmt: skip
    """Send the readings in time order, batch by batch, recording progress."""
    order = np.argsort(np.array([t.timestamp() for t in history.ts]), kind="stable")
    ts_us = np.array([int(history.ts[i].timestamp() * 1e6) for i in order], dtype=np.int64)
    values = np.array([history.mgdl[i] for i in order], dtype=np.float64)
    try:
        for start in range(0, ts_us.size, batch):
            part = slice(start, start + batch)
            accepted, duplicates = await send_history(shards, device_id, ts_us[part], values[part])
            await imports.progress(pool, import_id, len(ts_us[part]), accepted, duplicates)
        await imports.finish(pool, import_id)
    except Exception as exc:  # recorded on the import; the log names no value
        log.error("import %s failed: %s", import_id, type(exc).__name__)
        await imports.finish(pool, import_id, str(exc) or type(exc).__name__)


async def send_history(
    shards: ShardRouter, device_id: uuid.UUID, ts_us: np.ndarray, values: np.ndarray
) -> tuple[int, int]:
    """One batch through the shard as history; waits and retries while the database is
    busy. Returns (accepted, duplicates)."""
    for _ in range(_RETRIES):
        outcome = await shards.ingest(device_id, ts_us, values, time.time_ns() // 1000, True)
        if outcome.status == "ok":
            return outcome.accepted, outcome.duplicates
        if outcome.status != "busy":
            detail = "; ".join(p.message for p in outcome.problems[:3])
            raise RuntimeError(f"readings refused ({outcome.status}) {detail}".strip())
        await asyncio.sleep(outcome.retry_after_s)
    raise RuntimeError("the database stayed busy; import again later (nothing is duplicated)")


@router.get(
    "/imports/{import_id}",
    response_model=ImportOut,
    summary="An import's progress and outcome",
    responses=responses(401, 403, 404),
)
async def get_import(
    import_id: Annotated[uuid.UUID, Path(description="The import's id")],
    device: WritableDevice,
    pool: Pool,
) -> ImportOut:
    row = await imports.get(pool, device.id, import_id)
    if row is None:
        raise error(404, "import not found")
    return _out(row)


_OMH = {
    SensorKind.GLUCOSE: ("blood-glucose", "blood_glucose", "mg/dL"),
    SensorKind.TEMPERATURE: ("body-temperature", "body_temperature", "C"),
}


def omh_point(kind: SensorKind, device_id: uuid.UUID, ts: datetime, value: float) -> OmhDataPoint:
    """One reading as an Open mHealth data point (schema 4.0); its uuid is derived from the
    device and time, so exporting twice gives the same ids."""
    name, key, unit = _OMH[kind]
    when = ts.astimezone(UTC).isoformat().replace("+00:00", "Z")
    body: dict[str, Any] = {
        key: {"value": value, "unit": unit},
        "effective_time_frame": {"date_time": when},
    }
    if kind == SensorKind.GLUCOSE:
        body["specimen_source"] = "interstitial fluid"
    return OmhDataPoint(
        header=OmhHeader(
            uuid=uuid.uuid5(device_id, when),
            schema_id=OmhSchemaId(namespace="omh", name=name, version="4.0"),
            source_creation_date_time=ts,
            modality="sensed",
        ),
        body=body,
    )


@router.get(
    "/export/openmhealth",
    response_model=list[OmhDataPoint],
    summary="A device's readings as Open mHealth data points",
    responses=responses(401, 403, 404, 422),
)
async def export_openmhealth(
    device: ReadableDevice,
    pool: Pool,
    start: Annotated[AwareDatetime | None, Query(description="Inclusive lower bound")] = None,
    end: Annotated[AwareDatetime | None, Query(description="Exclusive upper bound")] = None,
    limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
) -> list[OmhDataPoint]:
    """`omh:blood-glucose:4.0` (mg/dL, interstitial fluid) for glucose sensors,
    `omh:body-temperature:4.0` (°C) for temperature patches, oldest first. The whole
    account's data (zip of JSON and CSV) is at `GET /v1/me/export`."""
    check_window(start, end)
    rows = await readings.list_readings(pool, device.id, start, end, limit)
    kind = SensorKind(device.kind)
    return [omh_point(kind, device.id, r["ts"], r["value"]) for r in rows]
