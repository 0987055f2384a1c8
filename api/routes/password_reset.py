"""Password reset by an emailed one-time token."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, status
from pydantic import BaseModel, EmailStr, Field, field_validator

from api import login_guard, rate_limits
from api.deps import Config, Pool
from api.errors import error, responses
from api.mailer import Mailer, get_mailer, send_quietly
from api.password_policy import MAX_LENGTH, MIN_LENGTH, check_password
from api.passwords import hash_password
from api.schemas import RequestModel, StrictJsonRoute, Text
from api.tokens import hash_secret, new_secret
from storage import accounts, password_resets

router = APIRouter(prefix="/v1/auth/password-reset", tags=["auth"], route_class=StrictJsonRoute)

RESET_ACCEPTED = (
    "if an active account has this email, a reset token has been sent to it; it works once,"
    " within an hour"
)


class ResetRequest(RequestModel):
    email: EmailStr = Field(examples=["ada@example.org"])


class ResetConfirm(RequestModel):
    token: Text = Field(min_length=16, max_length=200, description="The token from the email")
    new_password: Text = Field(
        min_length=MIN_LENGTH, max_length=MAX_LENGTH, examples=["a new long passphrase"]
    )

    @field_validator("new_password")
    @classmethod
    def not_common(cls, value: str) -> str:
        return check_password(value)


class Accepted(BaseModel):
    detail: str = Field(examples=[RESET_ACCEPTED])


class PasswordChanged(BaseModel):
    detail: str = Field(examples=["password changed; all sessions are signed out"])


@router.post(
    "",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=Accepted,
    summary="Request a password-reset token by email",
    responses={**responses(422), **rate_limits.TOO_MANY},
    dependencies=[rate_limits.by_address("reset_per_address", "password resets")],
)
async def request_reset(
    body: ResetRequest,
    pool: Pool,
    config: Config,
    background: BackgroundTasks,
    mailer: Annotated[Mailer, Depends(get_mailer)],
) -> Accepted:
    """Always 202 with the same body, whether or not the email has an account (no account
    enumeration). The email carries a one-time token for `POST /v1/auth/password-reset/confirm`."""
    user = await accounts.user_by_email(pool, body.email)
    if (
        user is not None
        and user["disabled_at"] is None
        and await rate_limits.email_allowed(pool, config.rate_limits, user["email"])
    ):
        token, digest = new_secret()
        await password_resets.create(pool, user["id"], digest, config.password_reset_ttl_s)
        background.add_task(
            send_quietly,
            mailer,
            user["email"],
            "Reset your Vigil password",
            "Someone (hopefully you) asked to reset the password of your Vigil account.\n\n"
            f"Reset token: {token}\n\n"
            "Send it with your new password to POST /v1/auth/password-reset/confirm within"
            f" {config.password_reset_ttl_s // 60} minutes. It works once. If you did not ask,"
            " ignore this message: your password stays as it is.",
        )
    return Accepted(detail=RESET_ACCEPTED)


@router.post(
    "/confirm",
    response_model=PasswordChanged,
    summary="Set a new password with an emailed reset token",
    responses=responses(422),
)
async def confirm_reset(body: ResetConfirm, pool: Pool) -> PasswordChanged:
    """Sets the new password and signs the account out everywhere (all refresh tokens are
    revoked). The token works once and expires after an hour; an unknown, used or expired
    token is a 422 naming `token`."""
    user = await password_resets.redeem(
        pool, hash_secret(body.token), await hash_password(body.new_password)
    )
    if user is None:
        raise error(422, "token: unknown, used or expired reset token")
    await login_guard.succeeded(pool, user["email"])
    return PasswordChanged(detail="password changed; all sessions are signed out")
