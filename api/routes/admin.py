"""Administration for platform operators (users with the admin role): list and search users,
profiles and devices; disable and re-enable users; move devices; read the audit log.
Everyone else gets 403."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from actors.router import ShardRouter
from api.deps import CallerId, Pool, Router, User, active_account
from api.errors import check_window, error, responses
from api.routes.audit import AuditPage, Before, End, Limit, Start, page
from api.routes.devices import DeviceOut
from api.schemas import Id, RequestModel, StrictJsonRoute
from storage import admin, alerts, audit

router = APIRouter(prefix="/v1/admin", tags=["admin"], route_class=StrictJsonRoute)
log = logging.getLogger(__name__)


async def admin_caller(pool: Pool, user_id: CallerId) -> User:
    """Dependency: the caller, if an active admin; 401 for a disabled account, 403 otherwise."""
    row = await admin.active_admin(pool, user_id)
    user = active_account(row)
    if row is None or not row["is_admin"]:
        raise error(403, "this needs the admin role")
    return user


Admin = Annotated[User, Depends(admin_caller)]
Q = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00]*$",
        description="Case-insensitive substring",
    ),
]
PageLimit = Annotated[int, Query(ge=1, le=500)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
UserId = Annotated[uuid.UUID, Path(description="The user's id")]


class AdminUser(BaseModel):
    id: uuid.UUID
    email: str = Field(examples=["ada@example.org"])
    name: str = Field(examples=["Ada Lovelace"])
    created_at: datetime
    disabled_at: datetime | None
    is_admin: bool
    profile_count: int = Field(examples=[2])
    device_count: int = Field(examples=[3])


class AdminProfile(BaseModel):
    id: uuid.UUID
    manager_id: uuid.UUID
    manager_email: str = Field(examples=["ada@example.org"])
    kind: Literal["self", "dependent"]
    name: str = Field(examples=["Mia"])
    timezone: str = Field(examples=["Europe/Paris"])
    created_at: datetime
    device_count: int = Field(examples=[1])


class AdminUserDetail(AdminUser):
    profiles: list[AdminProfile]
    devices: list[DeviceOut]


class DeviceMove(RequestModel):
    profile_id: Id = Field(description="The profile the device belongs to from now on")


_ERRORS = (401, 403, 422)


@router.get(
    "/users",
    response_model=list[AdminUser],
    summary="List or search users (admin)",
    responses=responses(*_ERRORS),
)
async def list_users(
    _: Admin, pool: Pool, q: Q = None, limit: PageLimit = 50, offset: Offset = 0
) -> list[AdminUser]:
    """Users whose email or name contains `q`, oldest first."""
    return [AdminUser(**dict(r)) for r in await admin.search_users(pool, q, limit, offset)]


@router.get(
    "/users/{user_id}",
    response_model=AdminUserDetail,
    summary="One user with their profiles and devices (admin)",
    responses=responses(*_ERRORS, 404),
)
async def get_user(_: Admin, pool: Pool, user_id: UserId) -> AdminUserDetail:
    row = await admin.get_user(pool, user_id)
    if row is None:
        raise error(404, "user not found")
    profiles = await admin.search_profiles(pool, None, user_id, 500, 0)
    devices = await admin.search_devices(pool, None, None, user_id, 500, 0)
    return AdminUserDetail(
        **dict(row),
        profiles=[AdminProfile(**dict(p)) for p in profiles],
        devices=[DeviceOut(**dict(d)) for d in devices],
    )


async def _set_disabled(
    pool: asyncpg.Pool, caller: User, user_id: uuid.UUID, disabled: bool
) -> AdminUser:
    if disabled and user_id == caller.id:
        raise error(409, "you cannot disable your own account")
    row = await admin.set_disabled(pool, user_id, disabled)
    if row is None:
        raise error(404, "user not found")
    return AdminUser(**dict(row))


@router.post(
    "/users/{user_id}/disable",
    response_model=AdminUser,
    summary="Disable a user: their tokens stop working at once (admin)",
    responses=responses(*_ERRORS, 404, 409),
)
async def disable_user(caller: Admin, pool: Pool, user_id: UserId) -> AdminUser:
    """The user's access tokens are refused from their next request on and every refresh
    token is revoked; their data stays. Re-enable with `/enable`."""
    return await _set_disabled(pool, caller, user_id, True)


@router.post(
    "/users/{user_id}/enable",
    response_model=AdminUser,
    summary="Re-enable a disabled user (admin)",
    responses=responses(*_ERRORS, 404),
)
async def enable_user(caller: Admin, pool: Pool, user_id: UserId) -> AdminUser:
    return await _set_disabled(pool, caller, user_id, False)


@router.get(
    "/profiles",
    response_model=list[AdminProfile],
    summary="List or search profiles (admin)",
    responses=responses(*_ERRORS),
)
async def list_profiles(
    _: Admin,
    pool: Pool,
    q: Q = None,
    manager_id: Annotated[uuid.UUID | None, Query(description="Only this user's")] = None,
    limit: PageLimit = 50,
    offset: Offset = 0,
) -> list[AdminProfile]:
    """Profiles whose name or manager's email contains `q`."""
    rows = await admin.search_profiles(pool, q, manager_id, limit, offset)
    return [AdminProfile(**dict(r)) for r in rows]


@router.get(
    "/devices",
    response_model=list[DeviceOut],
    summary="List or search devices (admin)",
    responses=responses(*_ERRORS),
)
async def list_devices(
    _: Admin,
    pool: Pool,
    q: Q = None,
    profile_id: Annotated[uuid.UUID | None, Query(description="Only this profile's")] = None,
    manager_id: Annotated[uuid.UUID | None, Query(description="Only this user's")] = None,
    limit: PageLimit = 50,
    offset: Offset = 0,
) -> list[DeviceOut]:
    """Devices whose serial or model contains `q`."""
    rows = await admin.search_devices(pool, q, profile_id, manager_id, limit, offset)
    return [DeviceOut(**dict(r)) for r in rows]


@router.post(
    "/devices/{device_id}/move",
    response_model=DeviceOut,
    summary="Move a device (and its readings) to another profile (admin)",
    responses=responses(*_ERRORS, 404, 409),
)
async def move_device(
    _: Admin,
    pool: Pool,
    shards: Router,
    body: DeviceMove,
    device_id: Annotated[uuid.UUID, Path(description="The device's id")],
) -> DeviceOut:
    """The device's readings go with it; the old profile's manager and followers lose access
    to it at once, the new profile's gain it. Its upload token stops working (a stream using
    it ends within `ingest_recheck_s`): the new profile's manager, or a follower with `manage`,
    issues a new one with `POST /v1/devices/{device_id}/upload-token`."""
    try:
        row = await admin.move_device(pool, device_id, body.profile_id)
    except admin.DuplicateSerial:
        raise error(409, "the target profile has a device with this serial already") from None
    if isinstance(row, str):
        raise error(404, f"{row} not found")
    await evict(shards, device_id)  # its actor reloads with the new profile (alert routing)
    return DeviceOut(**dict(row))


async def evict(shards: ShardRouter, device_id: uuid.UUID) -> None:
    """Make the device's shard forget its in-memory state (rebuilt from the database)."""
    try:
        await shards.evict(device_id)
    except Exception:
        log.exception("could not evict device %s from its shard", device_id)


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Read the audit log (admin)",
    responses=responses(*_ERRORS),
)
async def read_audit(
    _: Admin,
    pool: Pool,
    profile_id: Annotated[uuid.UUID | None, Query(description="Whose data was read")] = None,
    actor_id: Annotated[uuid.UUID | None, Query(description="Who read it")] = None,
    start: Start = None,
    end: End = None,
    before: Before = None,
    limit: Limit = 100,
) -> AuditPage:
    """Every recorded read, newest first, optionally narrowed."""
    check_window(start, end)
    rows = await audit.entries(
        pool,
        profile_id=profile_id,
        actor_id=actor_id,
        start=start,
        end=end,
        before_id=before,
        limit=limit,
    )
    return page(rows, limit)


class Latency(BaseModel):
    count: int = Field(examples=[120])
    p50_ms: float | None = Field(examples=[48.0])
    p95_ms: float | None = Field(examples=[160.0])
    p99_ms: float | None = Field(examples=[240.0])
    max_ms: float | None = Field(examples=[310.0])


class ChannelLatency(Latency):
    channel: str = Field(examples=["stream"])


class AlertLatency(BaseModel):
    since: datetime
    until: datetime
    fired: Latency = Field(description="Reading received by the API → alert decided")
    delivered: list[ChannelLatency] = Field(
        description="Reading received → first notification delivered, per channel (stream:"
        " handed to the person's open live streams; webhook/apns/fcm/email: accepted by the"
        " receiver)"
    )


def _latency(row: asyncpg.Record) -> dict:
    count, pcts, top = row["count"], row["percentile_cont"], row["max"]
    p50, p95, p99 = (round(x, 3) for x in pcts) if pcts else (None, None, None)
    return {
        "count": count,
        "p50_ms": p50,
        "p95_ms": p95,
        "p99_ms": p99,
        "max_ms": None if top is None else round(top, 3),
    }


@router.get(
    "/alert-latency",
    response_model=AlertLatency,
    summary="Latency of the alert path: receipt to firing and to each channel (admin)",
    responses=responses(*_ERRORS),
)
async def alert_latency(
    _: Admin,
    pool: Pool,
    start: Annotated[AwareDatetime | None, Query(description="Alerts fired at or after")] = None,
    end: Annotated[AwareDatetime | None, Query(description="Alerts fired before")] = None,
) -> AlertLatency:
    """Percentiles over the alerts fired in the window (default: the last 24 hours), from the
    timestamps every alert carries: when its reading was received, when it fired, and when
    each notification was delivered."""
    check_window(start, end)
    until = end or datetime.now(UTC)
    since = start or until - timedelta(days=1)
    fired = await alerts.fire_latency(pool, since, until)
    channels = await alerts.delivery_latency(pool, since, until)
    return AlertLatency(
        since=since,
        until=until,
        fired=Latency(**_latency(fired)),
        delivered=[ChannelLatency(channel=r["channel"], **_latency(r)) for r in channels],
    )
