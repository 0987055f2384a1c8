"""Device upload tokens: a credential that can only write one device's readings.

Registering a device returns one (shown once); `POST /v1/devices/{id}/upload-token` issues
a new one and invalidates the old. The readings upload accepts either such a token or a
user's access token; every other route refuses it (it is not a JWT).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated

import asyncpg
from fastapi import APIRouter, Depends, Path, Request
from pydantic import BaseModel, Field

from api.deps import Pool, oauth2, refuse, user_of_token
from api.errors import error, responses
from api.routes.devices import DeviceOut, WritableDevice, issue_upload_token
from api.schemas import StrictJsonRoute
from api.tokens import UPLOAD_TOKEN_PREFIX, KeyStore, hash_secret
from storage import access, upload_tokens
from storage.batches import Batcher

router = APIRouter(prefix="/v1/devices", tags=["devices"], route_class=StrictJsonRoute)


class UploadToken(BaseModel):
    device_id: uuid.UUID
    upload_token: str = Field(
        description="Send as `Authorization: Bearer …` to POST this device's readings; shown"
        " only now (Vigil keeps its hash)",
        examples=["vdt_3q2l0YQ2m7rJ0bW0y4mJ2kq3V9fJc2mW8xRt1bZ0aLg"],
    )
    created_at: datetime


@dataclass(frozen=True)
class UploadChecks:
    """A replica's credential checks for uploads, each kind sent together with the others
    that reach it at once (``storage.batches``): a user's grant on the device, and the
    device of an upload token (a stream re-checks its own every ``ingest_recheck_s``)."""

    grants: Batcher[tuple[uuid.UUID, uuid.UUID], access.DeviceGrant | None]
    tokens: Batcher[bytes, asyncpg.Record | None]

    @classmethod
    def on(cls, pool: asyncpg.Pool) -> UploadChecks:
        grants = Batcher(pool, access.device_grants)
        return cls(grants, Batcher(pool, upload_tokens.devices_for_tokens))


async def authorise_upload(
    keys: KeyStore, token: str | None, device_id: uuid.UUID, checks: UploadChecks
) -> DeviceOut:
    """The device if ``token`` is its upload token, or a user's who may `manage` its profile;
    one query either way, sent through ``checks`` with the replica's other uploads'. Raises
    the HTTP error (401, 403, 404) otherwise."""
    if token and token.startswith(UPLOAD_TOKEN_PREFIX):
        row = await checks.tokens.ask(hash_secret(token))
        if row is None:
            raise error(401, "invalid upload token", {"WWW-Authenticate": "Bearer"})
        if row["id"] != device_id:
            raise error(403, "this upload token belongs to another device")
        return DeviceOut(**dict(row))
    user_id = await user_of_token(keys, token)
    found = await checks.grants.ask((user_id, device_id))
    if found is None or not found[1].allows("manage"):
        refuse(found is not None, "manage", "device")
    return DeviceOut(**dict(found[0]))


async def uploadable_device(
    device_id: Annotated[uuid.UUID, Path(description="The device's id")],
    token: Annotated[str | None, Depends(oauth2)],
    request: Request,
) -> DeviceOut:
    # The pool and key store straight from the app: the ingest route runs this per batch.
    state = request.app.state
    return await authorise_upload(state.keys, token, device_id, state.upload_checks)


UploadableDevice = Annotated[DeviceOut, Depends(uploadable_device)]


@router.post(
    "/{device_id}/upload-token",
    response_model=UploadToken,
    summary="Issue a new upload token for a device (the old one stops working)",
    responses=responses(401, 403, 404),
)
async def rotate_upload_token(device: WritableDevice, pool: Pool) -> UploadToken:
    """For the profile's manager or a follower with `manage`."""
    token, created_at = await issue_upload_token(pool, device.id)
    return UploadToken(device_id=device.id, upload_token=token, created_at=created_at)
