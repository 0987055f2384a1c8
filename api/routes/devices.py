"""Devices: register a sensor, list and read your own."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, status
from pydantic import BaseModel, Field

from algorithms.sensors import SensorKind, spec_for
from api.deps import Caller, CallerId, Pool, refuse
from api.errors import error, responses
from api.routes.audit import record_read
from api.schemas import Id, RequestModel, StrictJsonRoute, Text, lenient_enum
from api.tokens import UPLOAD_TOKEN_PREFIX, new_secret
from storage import access, devices, profiles, upload_tokens

router = APIRouter(prefix="/v1/devices", tags=["devices"], route_class=StrictJsonRoute)


class DeviceCreate(RequestModel):
    kind: SensorKind = lenient_enum(examples=["glucose"])
    serial: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:\-]+$", examples=["G7-8H2KQ1"])
    model: Text | None = Field(None, max_length=100, examples=["Dexcom G7"])
    interval_s: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="Seconds between readings; default per kind (300 glucose, 60 temperature)",
        examples=[300],
    )
    profile_id: Id | None = Field(
        None, description="Whose device it is; default: the caller's own profile"
    )


class DeviceOut(BaseModel):
    id: uuid.UUID
    profile_id: uuid.UUID
    kind: SensorKind
    serial: str = Field(examples=["G7-8H2KQ1"])
    model: str | None = Field(examples=["Dexcom G7"])
    interval_s: int = Field(examples=[300])
    created_at: datetime


class DeviceCreated(DeviceOut):
    upload_token: str = Field(
        description="Lets a gateway or uploader POST this device's readings, and nothing"
        " else (`Authorization: Bearer …`). Shown only now; replace it with"
        " `POST /v1/devices/{id}/upload-token`.",
        examples=["vdt_3q2l0YQ2m7rJ0bW0y4mJ2kq3V9fJc2mW8xRt1bZ0aLg"],
    )


async def issue_upload_token(pool: asyncpg.Pool, device_id: uuid.UUID) -> tuple[str, datetime]:
    """A new upload token for the device (the old one stops working); shown only now."""
    token, digest = new_secret(UPLOAD_TOKEN_PREFIX)
    return token, await upload_tokens.replace_token(pool, device_id, digest)


DeviceId = Annotated[uuid.UUID, Path(description="The device's id")]


def device_with(scope: str):
    """Dependency: the path's device if the caller may use ``scope`` on its profile;
    404 for unknown and unrelated devices alike, 403 for a share without the scope."""

    async def dependency(
        device_id: DeviceId,
        user_id: CallerId,
        pool: Pool,
        request: Request,
        background: BackgroundTasks,
    ) -> DeviceOut:
        found = await access.device_grant(pool, user_id, device_id)
        if found is None or not found[1].allows(scope):
            refuse(found is not None, scope, "device")
        device = DeviceOut(**dict(found[0]))
        # GETs only (never the ingest POST): one INSERT into the audit log after the response.
        record_read(request, background, pool, user_id, device.profile_id, device.id)
        return device

    return dependency


ReadableDevice = Annotated[DeviceOut, Depends(device_with("readings"))]
WritableDevice = Annotated[DeviceOut, Depends(device_with("manage"))]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceCreated,
    summary="Register a device",
    responses=responses(401, 403, 404, 409, 422),
)
async def create_device(body: DeviceCreate, caller: Caller, pool: Pool) -> DeviceCreated:
    """Registers a sensor for a profile the caller manages (or may `manage` through a share).
    A serial can be registered once per profile."""
    profile_id = body.profile_id or await profiles.self_profile_id(pool, caller.id)
    grant = await access.profile_grant(pool, caller.id, profile_id)
    if grant is None or not grant.allows("manage"):
        refuse(grant is not None, "manage", "profile")
    interval_s = body.interval_s or spec_for(body.kind).default_interval_s
    try:
        row = await devices.create_device(
            pool, profile_id, body.kind.value, body.serial, body.model, interval_s
        )
    except devices.DuplicateSerial:
        raise error(409, f"a device with serial {body.serial!r} is registered already") from None
    token, _ = await issue_upload_token(pool, row["id"])
    return DeviceCreated(**dict(row), upload_token=token)


@router.get(
    "",
    response_model=list[DeviceOut],
    summary="List the devices I may read",
    responses=responses(401),
)
async def list_devices(
    caller: Caller,
    pool: Pool,
    profile_id: Annotated[uuid.UUID | None, Query(description="Only this profile's")] = None,
) -> list[DeviceOut]:
    """Devices of the profiles the caller manages, and of those followed with `readings`."""
    rows = await devices.list_devices(pool, caller.id, profile_id)
    return [DeviceOut(**dict(r)) for r in rows]


@router.get(
    "/{device_id}",
    response_model=DeviceOut,
    summary="Get one device",
    responses=responses(401, 403, 404),
)
async def get_device(device: ReadableDevice) -> DeviceOut:
    return device
