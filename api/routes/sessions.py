"""Ending logins: logout (one login's refresh tokens) and logout everywhere.

Access tokens are stateless JWTs: a logout stops them from being refreshed, and those
already issued stay valid until they expire (at most 15 minutes).
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field

from api.deps import Caller, Pool
from api.errors import responses
from api.schemas import RequestModel, StrictJsonRoute, Text
from api.tokens import hash_secret
from storage import sessions

router = APIRouter(prefix="/v1/auth", tags=["auth"], route_class=StrictJsonRoute)


class LogoutRequest(RequestModel):
    refresh_token: Text = Field(
        min_length=1, max_length=200, description="The refresh token of the login to end"
    )


class LogoutResult(BaseModel):
    revoked: int = Field(
        description="Refresh tokens revoked (0 when the token was unknown or ended already)",
        examples=[3],
    )


@router.post(
    "/logout",
    response_model=LogoutResult,
    summary="Log out: revoke this login's refresh tokens",
    responses=responses(422),
)
async def logout(body: LogoutRequest, pool: Pool) -> LogoutResult:
    """The refresh token is the proof, so no bearer token is needed. Access tokens already
    issued to this login stay valid until they expire (at most 15 minutes)."""
    revoked = await sessions.revoke_login(pool, hash_secret(body.refresh_token))
    return LogoutResult(revoked=revoked)


@router.post(
    "/logout-all",
    response_model=LogoutResult,
    summary="Log out everywhere: revoke every refresh token of mine",
    responses=responses(401),
)
async def logout_all(caller: Caller, pool: Pool) -> LogoutResult:
    """Ends every login of the caller; their access tokens expire within 15 minutes."""
    return LogoutResult(revoked=await sessions.revoke_all_logins(pool, caller.id))
