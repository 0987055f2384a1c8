"""Devices: register a sensor, list and read your own."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, status
from pydantic import BaseModel, Field

from algorithms.sensors import SensorKind, spec_for
from api.deps import Caller, Pool
from api.errors import error, responses
from storage import devices

router = APIRouter(prefix="/v1/devices", tags=["devices"])


class DeviceCreate(BaseModel):
    kind: SensorKind = Field(examples=["glucose"])
    serial: str = Field(min_length=1, max_length=64, pattern=r"^[\w.:\-]+$", examples=["G7-8H2KQ1"])
    model: str | None = Field(None, max_length=100, examples=["Dexcom G7"])
    interval_s: int | None = Field(
        None,
        ge=1,
        le=3600,
        description="Seconds between readings; default per kind (300 glucose, 60 temperature)",
        examples=[300],
    )


class DeviceOut(BaseModel):
    id: uuid.UUID
    kind: SensorKind
    serial: str = Field(examples=["G7-8H2KQ1"])
    model: str | None = Field(examples=["Dexcom G7"])
    interval_s: int = Field(examples=[300])
    created_at: datetime


async def owned_device(
    device_id: Annotated[uuid.UUID, Path(description="The device's id")], caller: Caller, pool: Pool
) -> DeviceOut:
    """The caller's device, or 404 (unknown and foreign devices are indistinguishable)."""
    row = await devices.get_owned_device(pool, caller.id, device_id)
    if row is None:
        raise error(404, "device not found")
    return DeviceOut(**dict(row))


OwnedDevice = Annotated[DeviceOut, Depends(owned_device)]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=DeviceOut,
    summary="Register a device",
    responses=responses(401, 409, 422),
)
async def create_device(body: DeviceCreate, caller: Caller, pool: Pool) -> DeviceOut:
    """Registers a sensor for the caller. A serial can be registered once per account."""
    interval_s = body.interval_s or spec_for(body.kind).default_interval_s
    try:
        row = await devices.create_device(
            pool, caller.id, body.kind.value, body.serial, body.model, interval_s
        )
    except devices.DuplicateSerial:
        raise error(409, f"a device with serial {body.serial!r} is registered already") from None
    return DeviceOut(**dict(row))


@router.get("", response_model=list[DeviceOut], summary="List my devices", responses=responses(401))
async def list_devices(caller: Caller, pool: Pool) -> list[DeviceOut]:
    return [DeviceOut(**dict(r)) for r in await devices.list_devices(pool, caller.id)]


@router.get(
    "/{device_id}",
    response_model=DeviceOut,
    summary="Get one device",
    responses=responses(401, 404),
)
async def get_device(device: OwnedDevice) -> DeviceOut:
    return device
