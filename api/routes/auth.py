"""Accounts and tokens: sign up, and the OAuth2 token endpoint (password and refresh grants)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Depends, Form, Request, status
from pydantic import BaseModel, EmailStr, Field, field_validator

from api import login_guard, rate_limits
from api.deps import Config, Keys, Pool
from api.errors import ErrorBody, error, responses
from api.mailer import Mailer, get_mailer, send_quietly
from api.password_policy import check_password
from api.passwords import hash_password, needs_rehash, verify_password
from api.schemas import RequestModel, StrictJsonRoute, Text
from api.tokens import hash_secret, new_secret
from storage import accounts

router = APIRouter(prefix="/v1/auth", tags=["auth"], route_class=StrictJsonRoute)


SIGNUP_ACCEPTED = (
    "signup accepted: if the email was not registered yet, the account is ready and you can"
    " obtain tokens; otherwise its owner has been notified by email"
)


class SignupRequest(RequestModel):
    email: EmailStr = Field(examples=["ada@example.org"])
    password: Text = Field(min_length=10, max_length=256, examples=["correct horse battery"])
    name: Text = Field(min_length=1, max_length=200, examples=["Ada Lovelace"])

    @field_validator("password")
    @classmethod
    def not_common(cls, value: str) -> str:
        return check_password(value)


class SignupAccepted(BaseModel):
    detail: str = Field(examples=[SIGNUP_ACCEPTED])


class TokenResponse(BaseModel):
    access_token: str = Field(description="JWT (EdDSA) to send as `Authorization: Bearer …`")
    token_type: Literal["bearer"] = "bearer"
    expires_in: int = Field(description="Seconds the access token stays valid", examples=[900])
    refresh_token: str = Field(description="One-time token for `grant_type=refresh_token`")


@router.post(
    "/signup",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=SignupAccepted,
    summary="Create an account",
    responses={**responses(422), **rate_limits.TOO_MANY},
    dependencies=[rate_limits.by_address("signup_per_address", "sign-ups")],
)
async def signup(
    body: SignupRequest,
    pool: Pool,
    config: Config,
    background: BackgroundTasks,
    mailer: Annotated[Mailer, Depends(get_mailer)],
) -> SignupAccepted:
    """Creates a user who can then obtain tokens at `/v1/auth/token`. The answer is the same
    whether or not the email is registered already (no account enumeration); in that case
    the existing account's owner gets an email instead."""
    password_hash = await hash_password(body.password)
    try:
        await accounts.create_user(pool, body.email, password_hash, body.name)
    except accounts.EmailTaken:
        existing = await accounts.user_by_email(pool, body.email)
        recipient = existing["email"] if existing else body.email
        if not await rate_limits.email_allowed(pool, config.rate_limits, recipient):
            return SignupAccepted(detail=SIGNUP_ACCEPTED)  # the same answer, no email
        background.add_task(
            send_quietly,
            mailer,
            recipient,
            "Someone tried to sign up with your email",
            "Someone tried to create a Vigil account with this email address, which already"
            " has one. If it was you and you forgot your password, reset it with"
            " POST /v1/auth/password-reset. Otherwise you can ignore this message.",
        )
    return SignupAccepted(detail=SIGNUP_ACCEPTED)


@router.post(
    "/token",
    response_model=TokenResponse,
    summary="Obtain tokens (OAuth2 password or refresh_token grant)",
    responses={
        **responses(401, 422),
        429: {
            "model": ErrorBody,
            "description": "Too many failed logins, or logins from this address; see `Retry-After`",
        },
    },
)
async def token(
    request: Request,
    pool: Pool,
    keys: Keys,
    config: Config,
    grant_type: Annotated[Literal["password", "refresh_token"], Form()] = "password",
    username: Annotated[str | None, Form(description="The account's email")] = None,
    password: Annotated[str | None, Form()] = None,
    refresh_token: Annotated[str | None, Form()] = None,
) -> TokenResponse:
    """Form-encoded, as OAuth2 specifies. With `grant_type=password` send `username` (the
    email) and `password`; with `grant_type=refresh_token` send `refresh_token`. A refresh
    token works once: each use returns a new one, and presenting a used one again revokes
    every token descended from the same login."""
    if grant_type == "password":
        if not username or not password:
            raise error(422, "username and password are required for grant_type=password")
        address = login_guard.client_address(request)
        await rate_limits.enforce(
            pool, config.rate_limits, "login_per_address", address, "login attempts"
        )
        await login_guard.check(pool, username, address)
        user = await accounts.user_by_email(pool, username)
        ok = await verify_password(user["password_hash"] if user else None, password)
        if user is None or not ok or user["disabled_at"] is not None:
            await login_guard.failed(pool, config, username, address)
            raise error(401, "wrong email or password", {"WWW-Authenticate": "Bearer"})
        await login_guard.succeeded(pool, username)
        if needs_rehash(user["password_hash"]):
            await accounts.upgrade_password_hash(
                pool, user["id"], user["password_hash"], await hash_password(password)
            )
        user_id, family_id = user["id"], uuid.uuid4()
    else:
        if not refresh_token:
            raise error(422, "refresh_token is required for grant_type=refresh_token")
        row = await accounts.use_refresh_token(pool, hash_secret(refresh_token))
        if row is None or row["revoked"] or row["expires_at"] < datetime.now(UTC):
            raise error(401, "invalid refresh token", {"WWW-Authenticate": "Bearer"})
        if row["reused"]:
            await accounts.revoke_token_family(pool, row["family_id"])
            raise error(
                401, "refresh token reused: this login is revoked", {"WWW-Authenticate": "Bearer"}
            )
        if row["disabled"]:
            raise error(401, "account disabled", {"WWW-Authenticate": "Bearer"})
        user_id, family_id = row["user_id"], row["family_id"]
    return await issue_tokens(pool, keys, config, user_id, family_id)


async def issue_tokens(
    pool: Pool, keys: Keys, config: Config, user_id: uuid.UUID, family_id: uuid.UUID
) -> TokenResponse:
    """Vigil's own access token and a new refresh token of the login ``family_id``."""
    access, ttl = keys.issue(user_id)
    new_token, new_hash = new_secret()
    expires = datetime.now(UTC) + timedelta(seconds=config.refresh_token_ttl_s)
    await accounts.store_refresh_token(pool, user_id, family_id, new_hash, expires)
    return TokenResponse(access_token=access, expires_in=ttl, refresh_token=new_token)
