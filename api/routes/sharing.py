"""Sharing: a profile's manager invites followers by email with scopes; followers accept
with the one-time code, and either side can end the share at any time."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Depends, HTTPException, Path, status
from pydantic import BaseModel, EmailStr, Field

from api.deps import Caller, Config, Pool
from api.errors import error, responses
from api.mailer import Mailer, get_mailer, send_quietly
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import RequestModel, StrictJsonRoute, Text
from api.tokens import hash_secret, new_secret
from storage import shares

router = APIRouter(tags=["sharing"], route_class=StrictJsonRoute)

Scope = Literal["readings", "alerts", "manage"]
State = Literal["pending", "active", "declined", "revoked", "left"]


class InvitationCreate(RequestModel):
    email: EmailStr = Field(description="Whom to invite", examples=["grandma@example.org"])
    scopes: list[Scope] = Field(
        min_length=1,
        max_length=3,
        description="readings: values, history, statistics, reports; alerts: receive the"
        " profile's alerts; manage: edit limits and devices (caregivers)",
        examples=[["readings", "alerts"]],
    )
    expires_in_hours: int = Field(
        7 * 24, ge=1, le=30 * 24, description="How long the code may be used", examples=[168]
    )


class ShareOut(BaseModel):
    id: uuid.UUID
    profile_id: uuid.UUID
    profile_name: str = Field(examples=["Mia"])
    invited_email: str = Field(examples=["grandma@example.org"])
    scopes: list[Scope] = Field(examples=[["readings", "alerts"]])
    state: State = Field(examples=["active"])
    follower_id: uuid.UUID | None = Field(description="Who accepted (or declined)")
    follower_email: str | None = Field(examples=["grandma@example.org"])
    follower_name: str | None = Field(examples=["Grandma"])
    expires_at: datetime = Field(description="Until when the invitation code could be used")
    created_at: datetime
    accepted_at: datetime | None
    ended_at: datetime | None


class InvitationCreated(ShareOut):
    code: str = Field(
        description="The one-time code the invitee sends to /v1/shares/accept. Shown only"
        " here (and in the invitation email); Vigil keeps only its hash.",
        examples=["kq3V9fJc2mW8xRt1bZ0aLg"],
    )


class CodeBody(RequestModel):
    code: Text = Field(min_length=1, max_length=200, examples=["kq3V9fJc2mW8xRt1bZ0aLg"])


def _out(row, cls=ShareOut, **extra) -> ShareOut:
    row = dict(row)
    fields = {name: row[name] for name in ShareOut.model_fields}
    fields["scopes"] = sorted(fields["scopes"])
    return cls(**fields, **extra)


async def _managed_profile(
    access: Annotated[ProfileAccess, Depends(profile_with(None))],
) -> ProfileAccess:
    """The path's profile if the caller manages it: 404 without a relation, 403 for a
    follower (whatever their scopes)."""
    if not access.grant.is_manager:
        raise error(403, "only the profile's manager can manage its followers")
    return access


ManagedProfile = Annotated[ProfileAccess, Depends(_managed_profile)]
ShareId = Annotated[uuid.UUID, Path(description="The share's (invitation's) id")]

_REFUSALS = {
    "unknown": (404, "invitation code not recognised"),
    "accepted": (409, "this invitation code was used already"),
    "declined": (409, "this invitation was declined"),
    "revoked": (409, "this invitation was withdrawn by the profile's manager"),
    "left": (409, "this invitation was used already"),
    "own": (409, "you manage this profile: there is nothing to accept"),
    "following": (409, "you follow this profile already"),
}


def _refused(exc: shares.CodeRefused) -> HTTPException:
    if exc.reason == "expired":
        assert exc.expires_at is not None
        return error(409, f"this invitation code expired at {exc.expires_at.isoformat()}")
    code, message = _REFUSALS.get(exc.reason, (409, "this invitation code cannot be used"))
    return error(code, message)


async def _answer(pool: asyncpg.Pool, body: CodeBody, user_id: uuid.UUID, accept: bool) -> ShareOut:
    try:
        return _out(await shares.answer(pool, hash_secret(body.code.strip()), user_id, accept))
    except shares.CodeRefused as exc:
        raise _refused(exc) from None


@router.post(
    "/v1/profiles/{profile_id}/shares",
    status_code=status.HTTP_201_CREATED,
    response_model=InvitationCreated,
    summary="Invite someone to follow a profile",
    responses=responses(401, 403, 404, 409, 422),
)
async def invite(
    body: InvitationCreate,
    found: ManagedProfile,
    caller: Caller,
    pool: Pool,
    config: Config,
    mailer: Annotated[Mailer, Depends(get_mailer)],
) -> InvitationCreated:
    """Only the profile's manager invites. The answer carries a one-time `code` (shown once;
    also emailed when mail is configured) that the invitee, logged in as any user, sends to
    `/v1/shares/accept`. A profile has at most 20 followers plus open invitations (a
    setting): 409 beyond."""
    code, digest = new_secret(nbytes=16)
    expires_at = datetime.now(UTC) + timedelta(hours=body.expires_in_hours)
    try:
        row = await shares.invite(
            pool,
            found.profile_id,
            caller.id,
            str(body.email),
            sorted(set(body.scopes)),
            digest,
            expires_at,
            config.max_followers,
        )
    except shares.TooManyShares:
        raise error(
            409,
            f"this profile has {config.max_followers} followers and open invitations, the most"
            " it may have: revoke one first",
        ) from None
    out = _out(row, InvitationCreated, code=code)
    await send_quietly(
        mailer,
        str(body.email),
        f"{caller.name} invites you to follow {out.profile_name} on Vigil",
        f"Your invitation code is {code}. It works once, until {expires_at:%Y-%m-%d %H:%M} UTC.",
    )
    return out  # type: ignore[return-value]


@router.get(
    "/v1/profiles/{profile_id}/shares",
    response_model=list[ShareOut],
    summary="A profile's followers and open invitations",
    responses=responses(401, 403, 404),
)
async def list_profile_shares(found: ManagedProfile, pool: Pool) -> list[ShareOut]:
    """Active followers and unexpired pending invitations, oldest first (manager only)."""
    return [_out(r) for r in await shares.profile_shares(pool, found.profile_id)]


@router.delete(
    "/v1/profiles/{profile_id}/shares/{share_id}",
    response_model=ShareOut,
    summary="Revoke a follower or withdraw an invitation",
    responses=responses(401, 403, 404),
)
async def revoke_share(found: ManagedProfile, share_id: ShareId, pool: Pool) -> ShareOut:
    """The follower loses access on their very next request."""
    row = await shares.revoke(pool, found.profile_id, share_id)
    if row is None:
        raise error(404, "no active share or open invitation with this id on this profile")
    return _out(row)


@router.post(
    "/v1/shares/accept",
    response_model=ShareOut,
    summary="Accept an invitation with its code",
    responses=responses(401, 404, 409, 422),
)
async def accept(body: CodeBody, caller: Caller, pool: Pool) -> ShareOut:
    """Any logged-in user may accept: the code is the proof (the invited email need not be
    the caller's). The share records who accepted. A code works once, until it expires."""
    return await _answer(pool, body, caller.id, accept=True)


@router.post(
    "/v1/shares/decline",
    response_model=ShareOut,
    summary="Decline an invitation with its code",
    responses=responses(401, 404, 409, 422),
)
async def decline(body: CodeBody, caller: Caller, pool: Pool) -> ShareOut:
    return await _answer(pool, body, caller.id, accept=False)


@router.get(
    "/v1/shares/following",
    response_model=list[ShareOut],
    summary="Profiles I follow, with my scopes",
    responses=responses(401),
)
async def following(caller: Caller, pool: Pool) -> list[ShareOut]:
    return [_out(r) for r in await shares.following(pool, caller.id)]


@router.post(
    "/v1/shares/{share_id}/leave",
    response_model=ShareOut,
    summary="Stop following a profile",
    responses=responses(401, 404),
)
async def leave(share_id: ShareId, caller: Caller, pool: Pool) -> ShareOut:
    row = await shares.leave(pool, caller.id, share_id)
    if row is None:
        raise error(404, "you have no active share with this id")
    return _out(row)
