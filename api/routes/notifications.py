"""How I want to be told: my notification preferences per profile, webhooks, push tokens."""

from __future__ import annotations

import json
import uuid
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
import httpx
from fastapi import APIRouter, Depends, Path, status
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field, field_validator

from actors import destinations
from algorithms.alert_settings import hhmm, quiet_periods
from algorithms.rules import RuleKind
from api.deps import Caller, Config, Pool
from api.errors import error, found, responses
from api.routes.alert_settings import MAX_QUIET_PERIODS, QuietPeriodIn, quiet_inputs
from api.routes.profiles import TIME_ZONES, ProfileAccess, profile_with
from api.schemas import RequestModel, StrictJsonRoute, lenient_enum
from storage import notifications, profiles

router = APIRouter(tags=["notifications"], route_class=StrictJsonRoute)

Channel = Literal["stream", "push", "email", "webhook"]
ALL_CHANNELS: list[Channel] = ["stream", "push", "email", "webhook"]


class PrefsIn(RequestModel):
    rules: list[Annotated[RuleKind, lenient_enum()]] | None = Field(
        None,
        max_length=len(RuleKind),
        description="Rules to be told about; null: all. Urgent alerts always come through",
        examples=[["urgent_low", "low", "high"]],
    )
    channels: list[Channel] = Field(
        default_factory=lambda: list(ALL_CHANNELS),
        max_length=len(ALL_CHANNELS),
        examples=[["push", "webhook"]],
    )
    quiet: list[QuietPeriodIn] = Field(
        default_factory=list,
        max_length=MAX_QUIET_PERIODS,
        description="My own quiet hours; urgent alerts still come",
    )
    timezone: str | None = Field(
        None, description="Time zone of my quiet hours; default: the profile's", examples=["UTC"]
    )
    escalation_only: bool = Field(
        False, description="Only urgent alerts nobody acknowledged in time", examples=[False]
    )

    @field_validator("timezone")
    @classmethod
    def known_zone(cls, value: str | None) -> str | None:
        if value is not None and value not in TIME_ZONES:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/Paris)")
        return value


class PrefsOut(BaseModel):
    profile_id: uuid.UUID
    rules: list[str] | None = Field(examples=[None])
    channels: list[str] = Field(examples=[ALL_CHANNELS])
    quiet: list[QuietPeriodIn]
    timezone: str | None = Field(examples=["UTC"])
    escalation_only: bool = Field(examples=[False])
    updated_at: datetime | None


def _prefs_out(profile_id: uuid.UUID, row: asyncpg.Record | None) -> PrefsOut:
    if row is None:
        return PrefsOut(
            profile_id=profile_id,
            rules=None,
            channels=list(ALL_CHANNELS),
            quiet=[],
            timezone=None,
            escalation_only=False,
            updated_at=None,
        )
    quiet = row["quiet"]
    if isinstance(quiet, str):
        quiet = json.loads(quiet)
    return PrefsOut(
        profile_id=profile_id,
        rules=row["rules"],
        channels=row["channels"],
        quiet=[
            QuietPeriodIn(
                start=hhmm(q["start_min"]), end=hhmm(q["end_min"]), weekdays=q["weekdays"]
            )
            for q in quiet
        ],
        timezone=row["timezone"],
        escalation_only=row["escalation_only"],
        updated_at=row["updated_at"],
    )


async def _profile_zone(pool: asyncpg.Pool, profile_id: uuid.UUID) -> str:
    return found(await profiles.get_profile(pool, profile_id), "profile")["timezone"]


Alertable = Annotated[ProfileAccess, Depends(profile_with("alerts"))]


@router.get(
    "/v1/profiles/{profile_id}/notification-preferences",
    response_model=PrefsOut,
    summary="How I am told about this profile's alerts",
    responses=responses(401, 403, 404),
)
async def get_prefs(found: Alertable, caller: Caller, pool: Pool) -> PrefsOut:
    row = await notifications.get_prefs(pool, caller.id, found.profile_id)
    return _prefs_out(found.profile_id, row)


@router.put(
    "/v1/profiles/{profile_id}/notification-preferences",
    response_model=PrefsOut,
    summary="Choose which of this profile's alerts reach me, and how",
    responses=responses(401, 403, 404, 422),
)
async def put_prefs(body: PrefsIn, found: Alertable, caller: Caller, pool: Pool) -> PrefsOut:
    """Refused (422 naming the period and its field) when a quiet period is empty or
    overlaps an earlier one, as in the alert settings."""
    periods, problem = quiet_periods(quiet_inputs(body.quiet))
    if problem is not None:
        at, msg = problem
        raise RequestValidationError(
            [{"loc": ("body", "quiet", *at), "msg": msg, "type": "value_error"}]
        )
    quiet = [
        {"start_min": q.start_min, "end_min": q.end_min, "weekdays": list(q.weekdays)}
        for q in periods
    ]
    row = await notifications.put_prefs(
        pool,
        caller.id,
        found.profile_id,
        None if body.rules is None else [str(r) for r in body.rules],
        list(dict.fromkeys(body.channels)),
        quiet,
        body.timezone or await _profile_zone(pool, found.profile_id),
        body.escalation_only,
    )
    return _prefs_out(found.profile_id, row)


class WebhookIn(RequestModel):
    url: str = Field(
        max_length=destinations.MAX_URL_LENGTH,
        description="An http(s) URL on the public internet (private, loopback, link-local and"
        " other special addresses are refused, in any spelling)",
        examples=["https://example.com/hooks/vigil"],
    )


class WebhookOut(BaseModel):
    id: uuid.UUID
    url: str = Field(
        description="Without user:password, query string or fragment (they may hold secrets)",
        examples=["https://example.com/hooks/vigil"],
    )
    created_at: datetime

    @field_validator("url")
    @classmethod
    def without_secrets(cls, value: str) -> str:
        return destinations.shown_url(value) or ""


class WebhookCreated(WebhookOut):
    secret: str = Field(
        description="Shown once. Deliveries are signed per the Standard Webhooks specification"
        " (`webhook-id`, `webhook-timestamp`, `webhook-signature` headers): verify them with"
        " any Standard Webhooks library and this secret; `webhook-id` stays the same on"
        " retries of one delivery",
        examples=["whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"],
    )


class WebhookSecretRotated(WebhookCreated):
    previous_secret_expires_at: datetime = Field(
        description="Until then deliveries carry a signature with the previous secret too,"
        " so receivers can switch at their own pace"
    )


@router.post(
    "/v1/webhooks",
    status_code=status.HTTP_201_CREATED,
    response_model=WebhookCreated,
    summary="Receive my alerts as signed HTTP POSTs",
    responses=responses(401, 409, 422),
)
async def add_webhook(
    body: WebhookIn, caller: Caller, pool: Pool, config: Config
) -> WebhookCreated:
    """Refused (422 naming ``url``) when the destination is not a public internet address:
    checked here, including what the name resolves to now, and again at each delivery."""
    await _check_destination(body.url, config.webhook_allow_private)
    try:
        row = await notifications.add_webhook(
            pool, caller.id, body.url, config.max_webhooks_per_user
        )
    except notifications.TooManyWebhooks:
        raise error(
            409,
            f"you have {config.max_webhooks_per_user} webhooks, the most one account may"
            " have: remove one first",
        ) from None
    return WebhookCreated(**dict(row))


async def _check_destination(url: str, allow_private: bool) -> None:
    problem = destinations.url_problem(url, allow_private)
    if problem is None:
        parsed = httpx.URL(url)
        try:
            port = parsed.port or (443 if parsed.scheme == "https" else 80)
            await destinations.resolve_public(parsed.host, port, allow_private)
        except destinations.DestinationRefused as refused:
            problem = str(refused)
        except (OSError, TimeoutError):
            pass  # does not resolve (yet): every delivery resolves and checks again
    if problem is not None:
        raise RequestValidationError(
            [{"loc": ("body", "url"), "msg": f"webhook URL {problem}", "type": "value_error"}]
        )


@router.post(
    "/v1/webhooks/{webhook_id}/rotate-secret",
    response_model=WebhookSecretRotated,
    summary="Give my webhook a new signing secret",
    responses=responses(401, 404),
)
async def rotate_webhook_secret(
    webhook_id: Annotated[uuid.UUID, Path()], caller: Caller, pool: Pool, config: Config
) -> WebhookSecretRotated:
    """The new secret is shown once; the previous one keeps signing beside it (a second
    signature in `webhook-signature`) for `VIGIL_WEBHOOK_SECRET_OVERLAP_S` seconds."""
    row = await notifications.rotate_webhook_secret(
        pool, caller.id, webhook_id, config.webhook_secret_overlap_s
    )
    return WebhookSecretRotated(**dict(found(row, "webhook")))


@router.get(
    "/v1/webhooks",
    response_model=list[WebhookOut],
    summary="My webhooks",
    responses=responses(401),
)
async def list_webhooks(caller: Caller, pool: Pool) -> list[WebhookOut]:
    return [WebhookOut(**dict(r)) for r in await notifications.list_webhooks(pool, caller.id)]


@router.delete(
    "/v1/webhooks/{webhook_id}",
    response_model=WebhookOut,
    summary="Remove a webhook",
    responses=responses(401, 404),
)
async def delete_webhook(
    webhook_id: Annotated[uuid.UUID, Path()], caller: Caller, pool: Pool
) -> WebhookOut:
    row = await notifications.delete_webhook(pool, caller.id, webhook_id)
    return WebhookOut(**dict(found(row, "webhook")))


class PushTokenIn(RequestModel):
    platform: Literal["apns", "fcm"] = Field(examples=["apns"])
    token: str = Field(
        min_length=8, max_length=4096, pattern=r"^[\w:\-.]+$", examples=["a1b2c3d4e5f6"]
    )


class PushTokenOut(PushTokenIn):
    id: uuid.UUID
    created_at: datetime


@router.post(
    "/v1/push-tokens",
    status_code=status.HTTP_201_CREATED,
    response_model=PushTokenOut,
    summary="Register this phone for push notifications (APNs or FCM)",
    responses=responses(401, 409, 422),
)
async def add_push_token(body: PushTokenIn, caller: Caller, pool: Pool) -> PushTokenOut:
    """409 when another account that is still signed in holds this token: the app removes
    its token when its user signs out (`DELETE /v1/push-tokens/{id}`), and a token whose
    holder has signed out everywhere moves to the new user. A token never changes hands
    silently while its holder can still receive alerts on it."""
    row = await notifications.add_push_token(pool, caller.id, body.platform, body.token)
    if row is None:
        raise error(
            409,
            "this push token is registered to another account that is still signed in;"
            " sign out there first",
        )
    return PushTokenOut(**dict(row))


@router.get(
    "/v1/push-tokens",
    response_model=list[PushTokenOut],
    summary="My registered phones",
    responses=responses(401),
)
async def list_push_tokens(caller: Caller, pool: Pool) -> list[PushTokenOut]:
    return [PushTokenOut(**dict(r)) for r in await notifications.list_push_tokens(pool, caller.id)]


@router.delete(
    "/v1/push-tokens/{token_id}",
    response_model=PushTokenOut,
    summary="Stop push notifications to a phone",
    responses=responses(401, 404),
)
async def delete_push_token(
    token_id: Annotated[uuid.UUID, Path()], caller: Caller, pool: Pool
) -> PushTokenOut:
    row = await notifications.delete_push_token(pool, caller.id, token_id)
    return PushTokenOut(**dict(found(row, "push token")))
