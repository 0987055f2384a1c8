"""Alerts: history, acknowledge, snooze.

An alert is one episode of one rule on one device: ``fired`` -> ``acknowledged`` (someone
saw it: no more repeats) -> ``cleared`` (the condition ended). Each carries the timestamps
of its path: when the reading was measured and received, when the alert was fired, and
each notification.

The shared state (acknowledged: repeats and escalation end for everyone; snoozed: repeats
held back) changes only with the profile's manager or a ``manage`` follower, and records
who. An ``alerts``-only follower's acknowledge or snooze applies to their own notifications
(``my_acknowledged_at``, ``my_snoozed_until``): the manager keeps getting the repeats and the
escalation until someone responsible acts.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, Path, Query
from pydantic import AwareDatetime, BaseModel, Field

from algorithms.rules import RuleKind
from api.deps import CallerId, Pool, Router, refuse
from api.errors import check_window, error, responses
from api.schemas import RequestModel, StrictJsonRoute
from storage import access, alerts, notifications

log = logging.getLogger(__name__)

router = APIRouter(prefix="/v1/alerts", tags=["alerts"], route_class=StrictJsonRoute)

AlertState = Literal["fired", "acknowledged", "cleared"]


class AlertOut(BaseModel):
    id: uuid.UUID
    profile_id: uuid.UUID
    device_id: uuid.UUID
    rule: str = Field(examples=["urgent_low"])
    severity: Literal["warning", "urgent"] = Field(examples=["urgent"])
    value: float | None = Field(description="The value that fired it", examples=[52.0])
    threshold: float = Field(examples=[55.0])
    state: AlertState = Field(examples=["fired"])
    reading_ts: datetime = Field(description="When the sensor measured the reading")
    received_at: datetime = Field(description="When Vigil received the reading")
    fired_at: datetime = Field(description="When the alert was decided")
    notified_at: list[datetime] = Field(description="The first notification and each repeat")
    latency_ms: float = Field(description="From receipt of the reading to firing", examples=[12.5])
    acknowledged_at: datetime | None
    acknowledged_by: uuid.UUID | None = Field(description="Who acknowledged it for everyone")
    snoozed_until: datetime | None
    snoozed_by: uuid.UUID | None = Field(description="Who snoozed it for everyone")
    cleared_at: datetime | None
    clear_value: float | None = Field(examples=[74.0])
    escalated_at: datetime | None = Field(
        description="When it was escalated (urgent and not acknowledged in time)"
    )
    my_acknowledged_at: datetime | None = Field(
        description="When I acknowledged it for myself only (a follower without `manage`)"
    )
    my_snoozed_until: datetime | None = Field(
        description="Until when I hold back its repeats for myself only"
    )


class DeliveryOut(BaseModel):
    event: str = Field(examples=["fired"])
    user_id: uuid.UUID | None
    channel: str = Field(examples=["webhook"])
    target: str | None = Field(
        description="Where it went; a webhook URL without user:password, query or fragment",
        examples=["https://example.com/hooks/vigil"],
    )
    attempt: int = Field(examples=[1])
    status: Literal["delivered", "failed", "retrying", "gave_up"] = Field(examples=["delivered"])
    detail: str | None = Field(examples=[None])
    at: datetime


class AlertDetail(AlertOut):
    deliveries: list[DeliveryOut] = Field(
        description="Every attempt to deliver it to you (only yours): live stream, webhook,"
        " push, email"
    )


class SnoozeIn(RequestModel):
    minutes: int = Field(ge=5, le=720, description="How long to hold back repeats", examples=[30])


def _out(row: asyncpg.Record) -> AlertOut:
    d = dict(row)
    d["latency_ms"] = round((d["fired_at"] - d["received_at"]).total_seconds() * 1000, 3)
    return AlertOut(**d)


async def _alert_for(pool: asyncpg.Pool, user_id: uuid.UUID, alert_id: uuid.UUID):
    row, _ = await _alert_and_grant(pool, user_id, alert_id)
    return row


async def _alert_and_grant(
    pool: asyncpg.Pool, user_id: uuid.UUID, alert_id: uuid.UUID
) -> tuple[asyncpg.Record, access.Grant]:
    row = await alerts.get_alert(pool, alert_id, user_id)
    grant = None if row is None else await access.profile_grant(pool, user_id, row["profile_id"])
    if row is None or grant is None or not grant.allows("alerts"):
        refuse(row is not None and grant is not None, "alerts", "alert")
    assert row is not None and grant is not None
    return row, grant


@router.get(
    "",
    response_model=list[AlertOut],
    summary="Alert history, newest first",
    responses=responses(401, 403, 404, 422),
)
async def list_alerts(
    user_id: CallerId,
    pool: Pool,
    profile_id: Annotated[uuid.UUID | None, Query(description="Only this profile's")] = None,
    since: Annotated[AwareDatetime | None, Query(description="Fired at or after")] = None,
    until: Annotated[AwareDatetime | None, Query(description="Fired before")] = None,
    state: Annotated[AlertState | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[AlertOut]:
    """Alerts of the profiles the caller manages or follows with the `alerts` scope."""
    check_window(since, until, ("since", "until"))
    if profile_id is not None:
        grant = await access.profile_grant(pool, user_id, profile_id)
        if grant is None or not grant.allows("alerts"):
            refuse(grant is not None, "alerts", "profile")
        ids = [profile_id]
    else:
        ids = [g.profile_id for g in await access.grants(pool, user_id) if g.allows("alerts")]
    rows = await alerts.list_alerts(pool, user_id, ids, since, until, state, limit)
    return [_out(r) for r in rows]


AlertId = Annotated[uuid.UUID, Path(description="The alert's id")]


@router.get(
    "/{alert_id}",
    response_model=AlertDetail,
    summary="One alert with its timeline and its deliveries to me",
    responses=responses(401, 403, 404),
)
async def get_alert(alert_id: AlertId, user_id: CallerId, pool: Pool) -> AlertDetail:
    row = await _alert_for(pool, user_id, alert_id)
    sent = await notifications.deliveries(pool, alert_id, user_id)
    return AlertDetail(**_out(row).model_dump(), deliveries=[DeliveryOut(**dict(d)) for d in sent])


@router.post(
    "/{alert_id}/ack",
    response_model=AlertOut,
    summary="Acknowledge an alert: it is not repeated any more",
    responses=responses(401, 403, 404),
)
async def acknowledge(alert_id: AlertId, user_id: CallerId, pool: Pool, shards: Router) -> AlertOut:
    """The manager or a `manage` follower: stops the repeats of this alert (and its
    escalation) for everyone, recording who; the rule alerts again after the condition has
    cleared. An `alerts`-only follower: stops them for themselves only (others keep getting
    them). Acknowledging twice, or a cleared alert, changes nothing."""
    row, grant = await _alert_and_grant(pool, user_id, alert_id)
    if not grant.allows("manage"):
        return _out(await alerts.act_for_self(pool, alert_id, user_id, acknowledge=True))
    row = await alerts.acknowledge(pool, alert_id, user_id)
    if row["state"] == "acknowledged":
        try:
            await shards.acknowledge(row["device_id"], row["rule"])
        except Exception:  # a restarting shard reads the acknowledgement from the database
            log.warning("shard not told of acknowledgement of %s", alert_id, exc_info=True)
    return _out(row)


@router.post(
    "/{alert_id}/snooze",
    response_model=AlertOut,
    summary="Hold back an alert's repeats for a while",
    responses=responses(401, 403, 404, 409, 422),
)
async def snooze(
    alert_id: AlertId, body: SnoozeIn, user_id: CallerId, pool: Pool, shards: Router
) -> AlertOut:
    """Urgent low cannot be snoozed (acknowledge it instead). 409 for a cleared alert.
    The manager or a `manage` follower snoozes for everyone (recorded with who); an
    `alerts`-only follower for themselves only."""
    row, grant = await _alert_and_grant(pool, user_id, alert_id)
    if row["rule"] == RuleKind.URGENT_LOW:
        raise error(422, "urgent low cannot be snoozed; acknowledge it instead")
    if row["state"] == "cleared":
        raise error(409, "the alert has cleared already")
    until = datetime.now(UTC) + timedelta(minutes=body.minutes)
    if not grant.allows("manage"):
        return _out(await alerts.act_for_self(pool, alert_id, user_id, snooze_until=until))
    row = await alerts.snooze(pool, alert_id, until, user_id)
    try:
        await shards.snooze(row["device_id"], row["rule"], until.timestamp())
    except Exception:
        log.warning("shard not told of snooze of %s", alert_id, exc_info=True)
    return _out(row)
