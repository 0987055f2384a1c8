"""Turning a profile's Nightscout site on and off, and its followers' access tokens.

The site answers at ``<origin>/ns/<site-id>`` (see ``api.routes.nightscout.site``). Its API secret
is what uploaders (xDrip+, AndroidAPS, Loop) are configured with; Vigil shows it once and
keeps only a hash of its SHA-1 hex, the form uploaders send it in.
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Request, status
from pydantic import BaseModel, Field

from algorithms.sensors import SensorKind, spec_for
from api.deps import Pool
from api.errors import error, responses
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import RequestModel, StrictJsonRoute, Text
from storage import devices, nightscout

router = APIRouter(
    prefix="/v1/profiles/{profile_id}/nightscout", tags=["nightscout"], route_class=StrictJsonRoute
)
ManagedProfile = Annotated[ProfileAccess, Depends(profile_with("manage"))]


def secret_hash(secret_or_sha1: str) -> bytes:
    """What is stored of a secret or token: SHA-256 of its SHA-1 hex. Accepts the secret
    itself or the 40-hex SHA-1 that clients send in the ``api-secret`` header."""
    value = secret_or_sha1
    if not re.fullmatch(r"[0-9a-fA-F]{40}", value):
        value = hashlib.sha1(value.encode()).hexdigest()
    return hashlib.sha256(value.lower().encode()).digest()


class SiteIn(RequestModel):
    api_secret: Text | None = Field(
        None,
        min_length=12,
        max_length=200,
        description="Your own secret (at least 12 characters), e.g. the one your uploader is"
        " already configured with; default: a new random one",
        examples=["correct horse battery"],
    )


class SiteOut(BaseModel):
    base_url: str = Field(
        description="What to enter as the Nightscout URL in the app",
        examples=["https://vigil.example.org/ns/k3v9q2m7x1"],
    )
    api_secret: str = Field(
        description="The API secret; shown only now", examples=["yX2c9Qm1r7LkT0ba"]
    )


class TokenIn(RequestModel):
    name: Text = Field(
        min_length=1,
        max_length=60,
        pattern=r"^[A-Za-z0-9 _.\-]+$",
        description="Who uses it (letters, digits, space, _ . -)",
        examples=["grandma's watch"],
    )
    can_write: bool = Field(
        False, description="Also post treatments and entries (default: read only)"
    )


class TokenInfo(BaseModel):
    id: uuid.UUID
    name: str = Field(examples=["grandma's watch"])
    can_write: bool = Field(examples=[False])
    created_at: datetime


class TokenOut(TokenInfo):
    token: str = Field(
        description="Enter it in the follower app (`?token=` or `Authorization: Bearer`);"
        " shown only now",
        examples=["grandmas-watch-5f0c1e9a7b3d2c4e6f8a0b1c"],
    )


class SiteDeleted(BaseModel):
    deleted: bool = Field(examples=[True])


@router.put(
    "",
    response_model=SiteOut,
    summary="Turn on the profile's Nightscout site, or rotate its API secret",
    responses=responses(401, 403, 404, 422),
)
async def put_site(
    found: ManagedProfile, pool: Pool, request: Request, body: SiteIn | None = None
) -> SiteOut:
    """For the profile's manager (or a follower with `manage`). The site's URL stays the
    same when the secret is rotated; the previous secret stops working at once."""
    secret = (body.api_secret if body else None) or secrets.token_urlsafe(18)
    kind = SensorKind.GLUCOSE
    device_id = await devices.find_or_create(
        pool, found.profile_id, kind.value, nightscout.UPLOADER_SERIAL, "Nightscout uploader",
        spec_for(kind).default_interval_s,
    )  # fmt: skip
    site_id = await nightscout.put_site(
        pool, found.profile_id, secrets.token_hex(8), secret_hash(secret), device_id
    )
    origin = str(request.base_url).rstrip("/")
    return SiteOut(base_url=f"{origin}/ns/{site_id}", api_secret=secret)


@router.delete(
    "",
    response_model=SiteDeleted,
    summary="Turn the profile's Nightscout site off (its tokens stop working)",
    responses=responses(401, 403, 404),
)
async def delete_site(found: ManagedProfile, pool: Pool) -> SiteDeleted:
    """Readings and events that came through the site stay."""
    if not await nightscout.delete_site(pool, found.profile_id):
        raise error(404, "this profile has no Nightscout site")
    return SiteDeleted(deleted=True)


@router.post(
    "/tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=TokenOut,
    summary="Issue an access token for a follower app or watch face",
    responses=responses(401, 403, 404, 409, 422),
)
async def create_token(body: TokenIn, found: ManagedProfile, pool: Pool) -> TokenOut:
    """Read-only unless `can_write`. The site must be on (409 otherwise)."""
    slug = re.sub(r"[^a-z0-9]+", "-", body.name.lower()).strip("-") or "token"
    token = f"{slug[:30]}-{secrets.token_hex(12)}"
    try:
        row = await nightscout.add_token(
            pool, found.profile_id, body.name, secret_hash(token), body.can_write
        )
    except nightscout.NoSite:
        raise error(409, "turn the Nightscout site on first (PUT .../nightscout)") from None
    return TokenOut(**dict(row), token=token)


@router.get(
    "/tokens",
    response_model=list[TokenInfo],
    summary="List the site's access tokens (not the tokens themselves)",
    responses=responses(401, 403, 404),
)
async def list_tokens(found: ManagedProfile, pool: Pool) -> list[TokenInfo]:
    return [TokenInfo(**dict(r)) for r in await nightscout.list_tokens(pool, found.profile_id)]


@router.delete(
    "/tokens/{token_id}",
    response_model=SiteDeleted,
    summary="Revoke an access token (the app using it is refused at once)",
    responses=responses(401, 403, 404),
)
async def revoke_token(
    token_id: Annotated[uuid.UUID, Path(description="The token's id")],
    found: ManagedProfile,
    pool: Pool,
) -> SiteDeleted:
    if not await nightscout.delete_token(pool, found.profile_id, token_id):
        raise error(404, "token not found")
    return SiteDeleted(deleted=True)
