"""Alert settings of a profile: each rule's threshold, on/off, quiet hours, re-alert interval.

Stored per profile; a profile without settings uses the clinical defaults
(:func:`algorithms.rules.default_rules`). A change reaches the device actors at once: the API
asks each shard hosting one of the profile's devices to reload the rules, so the very next
reading is evaluated with them (a shard that restarts loads them from the database).
"""

from __future__ import annotations

import json
import logging
import uuid
from datetime import datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field

from actors.router import ShardRouter
from algorithms.alert_settings import QuietInput, RuleInput, hhmm, validate_settings
from algorithms.rules import Rule, RuleKind, effective_rules
from algorithms.sensors import SensorKind
from api.deps import Pool, Router, refuse
from api.errors import responses
from api.routes.profiles import ProfileAccess, profile_with
from api.schemas import RequestModel, StrictJsonRoute, lenient_enum
from storage import alerts

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/profiles", tags=["alerts"], route_class=StrictJsonRoute)

_HHMM = r"^(([01]\d|2[0-3]):[0-5]\d|24:00)$"
DEFAULT_ESCALATION_MIN = 15
MAX_QUIET_PERIODS = 20  # per rule and per follower: enough for a different period each day


class QuietPeriodIn(RequestModel):
    start: str = Field(pattern=_HHMM, description="Local time HH:MM", examples=["22:00"])
    end: str = Field(
        pattern=_HHMM,
        description="Local time HH:MM; before `start` it runs past midnight",
        examples=["07:00"],
    )
    weekdays: list[Annotated[int, Field(ge=0, le=6)]] = Field(
        default_factory=lambda: list(range(7)),
        max_length=7,
        description="Days the period starts on: 0 = Monday ... 6 = Sunday",
        examples=[[0, 1, 2, 3, 4]],
    )


class RuleSetting(RequestModel):
    kind: RuleKind = lenient_enum(examples=["high"])
    threshold: float | None = Field(
        None, allow_inf_nan=False, description="In `unit`; omitted: the default", examples=[250]
    )
    enabled: bool | None = Field(None, examples=[True])
    realert_min: float | None = Field(
        None,
        ge=1,
        le=1440,
        description="Minutes between repeats of an alert still standing",
        examples=[120],
    )
    duration_min: float | None = Field(
        None,
        ge=0,
        le=240,
        description="Minutes the condition must hold before alerting",
        examples=[0],
    )
    quiet: list[QuietPeriodIn] = Field(
        default_factory=list,
        max_length=MAX_QUIET_PERIODS,
        description="Weekly quiet hours (profile's time zone); never hold back urgent alerts",
    )


class RuleOut(RuleSetting):
    threshold: float = Field(examples=[250])
    enabled: bool = Field(examples=[True])
    realert_min: float = Field(examples=[120])
    duration_min: float = Field(examples=[0])
    unit: str = Field(examples=["mg/dL"])
    severity: str = Field(examples=["warning"])


class AlertSettingsIn(RequestModel):
    escalation_min: int = Field(
        DEFAULT_ESCALATION_MIN,
        ge=1,
        le=1440,
        description="An urgent alert not acknowledged within this is escalated",
        examples=[15],
    )
    glucose: list[RuleSetting] = Field(
        default_factory=list,
        max_length=len(RuleKind),
        description="Rules for CGMs; kinds left out keep their defaults",
        examples=[
            [{"kind": "high", "threshold": 240, "quiet": [{"start": "22:00", "end": "07:00"}]}]
        ],
    )
    temperature: list[RuleSetting] = Field(
        default_factory=list, max_length=len(RuleKind), description="Rules for temperature patches"
    )


class AlertSettingsOut(BaseModel):
    profile_id: uuid.UUID
    escalation_min: int = Field(examples=[15])
    glucose: list[RuleOut]
    temperature: list[RuleOut]
    version: int = Field(description="0 while the clinical defaults apply", examples=[3])
    updated_at: datetime | None


def _rule_out(rule: Rule) -> RuleOut:
    return RuleOut(
        kind=rule.kind,
        threshold=float(rule.threshold or 0.0),
        enabled=bool(rule.enabled),
        realert_min=float(rule.realert_s or 0.0) / 60,
        duration_min=float(rule.duration_s or 0.0) / 60,
        quiet=[
            QuietPeriodIn(start=hhmm(q.start_min), end=hhmm(q.end_min), weekdays=list(q.weekdays))
            for q in rule.quiet
        ],
        unit=rule.spec.unit,
        severity=str(rule.severity),
    )


def _out(profile_id: uuid.UUID, row: Any) -> AlertSettingsOut:
    stored = row["rules"] if row else None
    if isinstance(stored, str):
        stored = json.loads(stored)
    return AlertSettingsOut(
        profile_id=profile_id,
        escalation_min=row["escalation_min"] if row else DEFAULT_ESCALATION_MIN,
        glucose=[_rule_out(r) for r in effective_rules(stored, SensorKind.GLUCOSE)],
        temperature=[_rule_out(r) for r in effective_rules(stored, SensorKind.TEMPERATURE)],
        version=row["version"] if row else 0,
        updated_at=row["updated_at"] if row else None,
    )


# -- validation (the rules are in algorithms.alert_settings) ------------------------------


def quiet_inputs(given: list[QuietPeriodIn]) -> tuple[QuietInput, ...]:
    return tuple(QuietInput(q.start, q.end, tuple(q.weekdays)) for q in given)


def _rule_input(item: RuleSetting) -> RuleInput:
    return RuleInput(
        kind=item.kind,
        threshold=item.threshold,
        enabled=item.enabled,
        realert_min=item.realert_min,
        duration_min=item.duration_min,
        quiet=quiet_inputs(item.quiet),
    )


def _validated(body: AlertSettingsIn) -> dict[str, list[dict[str, Any]]]:
    """The rules to store; a 422 naming each problem's field when there are any."""
    given = {s: [_rule_input(i) for i in getattr(body, str(s))] for s in SensorKind}
    stored, problems = validate_settings(given)
    errors = [
        {"loc": ("body", str(s), *p.loc()), "msg": p.message, "type": "value_error", "input": None}
        for s, found in problems.items()
        for p in found
    ]
    if errors:
        raise RequestValidationError(errors)
    return stored


# -- routes ----------------------------------------------------------------------------


def _readable(found: Annotated[ProfileAccess, Depends(profile_with(None))]) -> ProfileAccess:
    grant = found.grant
    if not (grant.allows("readings") or grant.allows("alerts")):
        refuse(True, "alerts", "profile")
    return found


@router.get(
    "/{profile_id}/alert-settings",
    response_model=AlertSettingsOut,
    summary="A profile's alert settings (defaults until changed)",
    responses=responses(401, 403, 404),
)
async def get_alert_settings(
    found: Annotated[ProfileAccess, Depends(_readable)], pool: Pool
) -> AlertSettingsOut:
    row = await alerts.get_settings(pool, found.profile_id)
    return _out(found.profile_id, row)


@router.put(
    "/{profile_id}/alert-settings",
    response_model=AlertSettingsOut,
    summary="Change a profile's alert settings (effective from the next reading)",
    responses=responses(401, 403, 404, 422),
)
async def put_alert_settings(
    body: AlertSettingsIn,
    found: Annotated[ProfileAccess, Depends(profile_with("manage"))],
    pool: Pool,
    shards: Router,
) -> AlertSettingsOut:
    """Rules left out keep their defaults. Refused (422, naming the field) when a threshold
    is outside the sensor range, low is not below high, quiet periods overlap, or urgent low
    is disabled or moved."""
    stored = _validated(body)
    row = await alerts.put_settings(pool, found.profile_id, stored, body.escalation_min)
    await reload_shards(pool, shards, found.profile_id)
    return _out(found.profile_id, row)


async def reload_shards(pool: asyncpg.Pool, shards: ShardRouter, profile_id: uuid.UUID) -> None:
    """Tell each shard hosting a device of the profile to use the new rules now."""
    devices = await alerts.profile_device_ids(pool, profile_id)
    for r in await shards.reload_rules(devices, profile_id):
        # A shard that cannot be reached restarts and loads the rules from the database.
        log.warning("shard did not reload alert rules of %s: %s", profile_id, r)
