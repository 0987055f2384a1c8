"""Profiles: the people whose readings Vigil keeps — yourself, and dependents you manage."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Literal
from zoneinfo import available_timezones

import asyncpg
from fastapi import APIRouter, BackgroundTasks, Depends, Path, Request, status
from pydantic import BaseModel, Field, field_validator

from api.deps import Caller, CallerId, Pool, refuse
from api.errors import responses
from api.routes.audit import record_read
from api.schemas import RequestModel, StrictJsonRoute, Text
from storage import access, profiles

router = APIRouter(prefix="/v1/profiles", tags=["profiles"], route_class=StrictJsonRoute)
TIME_ZONES = frozenset(available_timezones())


class ProfileCreate(RequestModel):
    name: Text = Field(min_length=1, max_length=200, examples=["Mia"])
    timezone: str = Field("UTC", description="IANA time zone", examples=["Europe/Paris"])

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, value: str) -> str:
        if value not in TIME_ZONES:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)")
        return value


class ProfileOut(BaseModel):
    id: uuid.UUID
    kind: Literal["self", "dependent"] = Field(examples=["dependent"])
    name: str = Field(examples=["Mia"])
    timezone: str = Field(examples=["Europe/Paris"])
    created_at: datetime
    role: Literal["manager", "follower"] = Field(examples=["manager"])
    scopes: list[str] = Field(
        description="What the caller may do: readings, alerts, manage",
        examples=[["readings", "alerts", "manage"]],
    )


def _out(row: asyncpg.Record, scopes: list[str] | None) -> ProfileOut:
    return ProfileOut(
        id=row["id"],
        kind=row["kind"],
        name=row["name"],
        timezone=row["timezone"],
        created_at=row["created_at"],
        role="manager" if scopes is None else "follower",
        scopes=sorted(access.MANAGER_SCOPES) if scopes is None else sorted(scopes),
    )


@dataclass(frozen=True, slots=True)
class ProfileAccess:
    profile_id: uuid.UUID
    grant: access.Grant


def profile_with(scope: str | None):
    """Dependency: the path's profile if the caller may use ``scope`` on it (any relation
    when ``scope`` is None); 404 without a relation, 403 without the scope."""

    async def dependency(
        profile_id: Annotated[uuid.UUID, Path(description="The profile's id")],
        user_id: CallerId,
        pool: Pool,
        request: Request,
        background: BackgroundTasks,
    ) -> ProfileAccess:
        grant = await access.profile_grant(pool, user_id, profile_id)
        if grant is None or (scope is not None and not grant.allows(scope)):
            refuse(grant is not None, scope or "", "profile")
        record_read(request, background, pool, user_id, profile_id)  # GETs only: audit log
        return ProfileAccess(profile_id, grant)

    return dependency


VisibleProfile = Annotated[ProfileAccess, Depends(profile_with(None))]


@router.get(
    "",
    response_model=list[ProfileOut],
    summary="Profiles I manage or follow",
    responses=responses(401),
)
async def list_profiles(caller: Caller, pool: Pool) -> list[ProfileOut]:
    rows = await profiles.visible_profiles(pool, caller.id)
    return [_out(r, r["scopes"]) for r in rows]


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ProfileOut,
    summary="Add a dependent profile (a person without a login whom I manage)",
    responses=responses(401, 422),
)
async def create_profile(body: ProfileCreate, caller: Caller, pool: Pool) -> ProfileOut:
    row = await profiles.create_profile(pool, caller.id, "dependent", body.name, body.timezone)
    return _out(row, None)


@router.get(
    "/{profile_id}",
    response_model=ProfileOut,
    summary="Get one profile",
    responses=responses(401, 404),
)
async def get_profile(found: VisibleProfile, pool: Pool) -> ProfileOut:
    row = await profiles.get_profile(pool, found.profile_id)
    grant = found.grant
    return _out(row, None if grant.is_manager else list(grant.scopes))
