"""Alerts: settings per profile, the per-device evaluator state, and the alerts themselves.

The shard writes (psycopg, inside the readings group-commit transaction: see
:class:`AlertWrite` and :func:`write_in_transaction`); the API reads and acknowledges
(asyncpg).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
from psycopg.types.json import Jsonb

from storage import json_text, live
from storage.live import LiveAlert

_EPOCH = "timestamptz 'epoch' + %s * interval '1 second'"


# --- settings -------------------------------------------------------------------------


async def get_settings(pool: asyncpg.Pool, profile_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT rules, escalation_min, version, updated_at FROM alert_settings"
        " WHERE profile_id = $1",
        profile_id,
    )


async def put_settings(
    pool: asyncpg.Pool, profile_id: UUID, rules: dict[str, list[dict]], escalation_min: int
) -> asyncpg.Record:
    return await pool.fetchrow(
        "INSERT INTO alert_settings AS a (profile_id, rules, escalation_min)"
        " VALUES ($1, $2::jsonb, $3) ON CONFLICT (profile_id) DO UPDATE"
        " SET rules = EXCLUDED.rules, escalation_min = EXCLUDED.escalation_min,"
        "     version = a.version + 1, updated_at = now()"
        " RETURNING rules, escalation_min, version, updated_at",
        profile_id,
        json.dumps(rules),
        escalation_min,
    )


async def profile_device_ids(pool: asyncpg.Pool, profile_id: UUID) -> list[UUID]:
    rows = await pool.fetch("SELECT id FROM devices WHERE profile_id = $1", profile_id)
    return [r["id"] for r in rows]


# --- what a device actor is rebuilt from ----------------------------------------------


@dataclass(frozen=True, slots=True)
class OpenAlert:
    id: UUID
    rule: str
    acknowledged: bool
    snoozed_until_s: float | None


@dataclass(frozen=True, slots=True)
class AlertContext:
    """A device's alert settings and persisted state, as a (re)starting shard loads them."""

    timezone: str = "UTC"
    rules: dict[str, list[dict]] | None = None  # None: the clinical defaults
    state: dict[str, Any] | None = None
    open_alerts: tuple[OpenAlert, ...] = ()
    body_site: str | None = None  # a temperature device's latest body site (None: not told)


async def profile_rules(
    conn: psycopg.AsyncConnection, profile_id: UUID
) -> tuple[str, dict[str, list[dict]] | None]:
    cur = await conn.execute(
        "SELECT p.timezone, s.rules FROM profiles p"
        " LEFT JOIN alert_settings s ON s.profile_id = p.id WHERE p.id = %s",
        (profile_id,),
    )
    row = await cur.fetchone()
    return ("UTC", None) if row is None else (row[0], row[1])


async def load_context(
    conn: psycopg.AsyncConnection, device_id: UUID, profile_id: UUID
) -> AlertContext:
    timezone, rules = await profile_rules(conn, profile_id)
    cur = await conn.execute("SELECT state FROM device_state WHERE device_id = %s", (device_id,))
    row = await cur.fetchone()
    cur = await conn.execute(
        "SELECT id, rule, state = 'acknowledged', extract(epoch FROM snoozed_until)::float8"
        " FROM alerts WHERE device_id = %s AND state <> 'cleared'",
        (device_id,),
    )
    open_alerts = tuple(OpenAlert(r[0], r[1], r[2], r[3]) for r in await cur.fetchall())
    cur = await conn.execute(
        "SELECT body_site FROM device_body_sites WHERE device_id = %s ORDER BY since DESC LIMIT 1",
        (device_id,),
    )
    site = await cur.fetchone()
    return AlertContext(
        timezone, rules, row[0] if row else None, open_alerts, site[0] if site else None
    )


# --- writes in the group-commit transaction --------------------------------------------


@dataclass(slots=True)
class AlertOp:
    """One change to the alerts table: ``fired`` inserts, ``repeated``/``cleared`` update."""

    type: str  # fired | repeated | cleared
    alert_id: UUID
    rule: str
    severity: str
    value: float | None
    threshold: float
    reading_ts_s: float
    received_s: float
    decided_s: float

    def live(self) -> LiveAlert:
        """This change as a live message carries it."""
        return LiveAlert(
            id=self.alert_id,
            rule=self.rule,
            event=self.type,
            severity=self.severity,
            value=self.value,
            threshold=self.threshold,
            reading_ts_s=self.reading_ts_s,
            received_s=self.received_s,
            decided_s=self.decided_s,
        )


@dataclass(slots=True)
class AlertWrite:
    """What a batch (or a clock tick) changes besides readings, for one device."""

    device_id: UUID
    profile_id: UUID
    state: dict[str, Any] | None = None
    ops: list[AlertOp] = field(default_factory=list)
    notify: str | None = None  # NOTIFY payload, delivered by PostgreSQL at commit


_INSERT = (
    "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
    " reading_ts, received_at, fired_at, notified_at)"
    f" VALUES (%s, %s, %s, %s, %s, %s, %s, {_EPOCH}, {_EPOCH}, {_EPOCH},"
    f" ARRAY[{_EPOCH}])"
    " ON CONFLICT (device_id, rule) WHERE state <> 'cleared' DO NOTHING"
)
_REPEAT = f"UPDATE alerts SET notified_at = notified_at || {_EPOCH} WHERE id = %s"
_CLEAR = (
    f"UPDATE alerts SET state = 'cleared', cleared_at = {_EPOCH}, clear_value = %s"
    " WHERE id = %s AND state <> 'cleared'"
)
# Every device's state in one binary jsonb parameter ({device id: state}): one json.dumps
# for the whole commit instead of an array of texts, each dumped and escaped on its own.
_STATE = (
    "INSERT INTO device_state (device_id, state, updated_at)"
    " SELECT key::uuid, value, now() FROM jsonb_each(%b)"
    " ON CONFLICT (device_id) DO UPDATE SET state = EXCLUDED.state, updated_at = now()"
)
_NOTIFY = "SELECT pg_notify(%s, p) FROM unnest(%b::text[]) AS t(p)"


async def write_in_transaction(cur: psycopg.AsyncCursor, writes: list[AlertWrite]) -> None:
    """Alert rows, device states and NOTIFYs of many devices; call inside the transaction.
    A write whose ``state`` is None leaves the device's stored state as it is."""
    states: dict[str, dict[str, Any]] = {}
    notifies: list[str] = []
    alerted: list[str] = []
    for w in writes:
        if w.state is not None:
            states[str(w.device_id)] = w.state  # the last state of a device wins
        if w.notify is not None:
            notifies.append(w.notify)
            if w.ops:
                alerted.append(w.notify)
        for op in w.ops:
            if op.type == "fired":
                await cur.execute(
                    _INSERT,
                    (
                        op.alert_id,
                        w.profile_id,
                        w.device_id,
                        op.rule,
                        op.severity,
                        op.value,
                        op.threshold,
                        op.reading_ts_s,
                        op.received_s,
                        op.decided_s,
                        op.decided_s,
                    ),
                )
            elif op.type == "repeated":
                await cur.execute(_REPEAT, (op.decided_s, op.alert_id))
            else:
                await cur.execute(_CLEAR, (op.reading_ts_s, op.value, op.alert_id))
    if states:
        await cur.execute(_STATE, (Jsonb(states, dumps=json_text.dumps),))
    if notifies:
        await cur.execute(_NOTIFY, (live.CHANNEL, notifies))
    if alerted:
        await cur.execute(_NOTIFY, (live.ALERTS_CHANNEL, alerted))


# --- the API's reads and changes --------------------------------------------------------

ALERT_COLUMNS = (
    "a.id, a.profile_id, a.device_id, a.rule, a.severity, a.value, a.threshold, a.state,"
    " a.reading_ts, a.received_at, a.fired_at, a.notified_at, a.acknowledged_at,"
    " a.acknowledged_by, a.snoozed_until, a.snoozed_by, a.cleared_at, a.clear_value,"
    " a.escalated_at, m.acknowledged_at AS my_acknowledged_at,"
    " m.snoozed_until AS my_snoozed_until"
)
# The caller's own acknowledgement/snooze ({user}: the caller's id parameter).
_MINE = " LEFT JOIN alert_personal m ON m.alert_id = a.id AND m.user_id = {user}"


async def list_alerts(
    pool: asyncpg.Pool,
    user_id: UUID,
    profile_ids: list[UUID],
    since: datetime | None,
    until: datetime | None,
    state: str | None,
    limit: int,
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {ALERT_COLUMNS} FROM alerts a {_MINE.format(user='$6')}"
        " WHERE a.profile_id = ANY($1::uuid[])"
        " AND ($2::timestamptz IS NULL OR a.fired_at >= $2)"
        " AND ($3::timestamptz IS NULL OR a.fired_at < $3)"
        " AND ($4::text IS NULL OR a.state = $4)"
        " ORDER BY a.fired_at DESC, a.id LIMIT $5",
        profile_ids,
        since,
        until,
        state,
        limit,
        user_id,
    )


async def get_alert(
    pool: asyncpg.Pool, alert_id: UUID, user_id: UUID | None = None
) -> asyncpg.Record | None:
    """The alert, with ``my_*`` columns of ``user_id``'s own acknowledgement and snooze."""
    return await pool.fetchrow(
        f"SELECT {ALERT_COLUMNS} FROM alerts a {_MINE.format(user='$2')} WHERE a.id = $1",
        alert_id,
        user_id,
    )


async def acknowledge(pool: asyncpg.Pool, alert_id: UUID, user_id: UUID) -> asyncpg.Record:
    """Fired -> acknowledged by ``user_id`` (acknowledging twice, or a cleared alert,
    changes nothing): the shared state, for everyone."""
    await pool.execute(
        "UPDATE alerts SET state = 'acknowledged', acknowledged_at = now(),"
        " acknowledged_by = $2 WHERE id = $1 AND state = 'fired'",
        alert_id,
        user_id,
    )
    return await get_alert(pool, alert_id, user_id)


async def snooze(
    pool: asyncpg.Pool, alert_id: UUID, until: datetime, user_id: UUID
) -> asyncpg.Record:
    """Hold back the repeats for everyone, recording who."""
    await pool.execute(
        "UPDATE alerts SET snoozed_until = $2, snoozed_by = $3 WHERE id = $1"
        " AND state <> 'cleared'",
        alert_id,
        until,
        user_id,
    )
    return await get_alert(pool, alert_id, user_id)


async def act_for_self(
    pool: asyncpg.Pool,
    alert_id: UUID,
    user_id: UUID,
    *,
    acknowledge: bool = False,
    snooze_until: datetime | None = None,
) -> asyncpg.Record:
    """``user_id`` acknowledges (no more repeats or escalation of this alert reach them; the
    first acknowledgement is kept) or snoozes (repeats held back) for themselves only: the
    alert's shared state is unchanged. Their open live streams are told (they filter by it)."""
    async with pool.acquire() as conn, conn.transaction():
        profile_id = await conn.fetchval(
            "INSERT INTO alert_personal (alert_id, user_id, acknowledged_at, snoozed_until)"
            " VALUES ($1, $2, CASE WHEN $3 THEN now() END, $4) ON CONFLICT (alert_id, user_id)"
            " DO UPDATE SET acknowledged_at = coalesce(alert_personal.acknowledged_at,"
            " EXCLUDED.acknowledged_at), snoozed_until = coalesce(EXCLUDED.snoozed_until,"
            " alert_personal.snoozed_until)"
            " RETURNING (SELECT profile_id FROM alerts WHERE id = $1)",
            alert_id,
            user_id,
            acknowledge,
            snooze_until,
        )
        await live.publish(conn, live.PersonalChanged(profile_id, user_id))
    return await get_alert(pool, alert_id, user_id)


async def acted_for_self(pool: asyncpg.Pool, user_id: UUID, profile_id: UUID) -> dict[str, dict]:
    """What ``user_id`` acknowledged or snoozed for themselves among the profile's open
    alerts, by alert id (see ``actors.notifier.muted_for_self``)."""
    rows = await pool.fetch(
        "SELECT ap.alert_id, ap.acknowledged_at IS NOT NULL AS acknowledged_for_self,"
        " extract(epoch FROM ap.snoozed_until)::float8 AS snoozed_for_self_until"
        " FROM alert_personal ap JOIN alerts a ON a.id = ap.alert_id"
        " WHERE ap.user_id = $1 AND a.profile_id = $2 AND a.state <> 'cleared'",
        user_id,
        profile_id,
    )
    return {
        str(r["alert_id"]): {
            "acknowledged_for_self": r["acknowledged_for_self"],
            "snoozed_for_self_until": r["snoozed_for_self_until"],
        }
        for r in rows
    }


# --- latency of the alert path, for operators ------------------------------------------

_PERCENTILES = (
    "count(*), percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY {ms}), max({ms})"
)


async def fire_latency(pool: asyncpg.Pool, since: datetime, until: datetime) -> asyncpg.Record:
    """Reading received → alert decided, over the alerts fired in ``[since, until)``."""
    ms = "extract(epoch FROM fired_at - received_at) * 1000"
    return await pool.fetchrow(
        f"SELECT {_PERCENTILES.format(ms=ms)} FROM alerts WHERE fired_at >= $1 AND fired_at < $2",
        since,
        until,
    )


async def delivery_latency(
    pool: asyncpg.Pool, since: datetime, until: datetime
) -> list[asyncpg.Record]:
    """Reading received → delivered, per channel, over the first notification (``fired``) of
    the alerts fired in ``[since, until)``."""
    ms = "extract(epoch FROM d.at - a.received_at) * 1000"
    return await pool.fetch(
        f"SELECT d.channel, {_PERCENTILES.format(ms=ms)} FROM alert_deliveries d"
        " JOIN alerts a ON a.id = d.alert_id"
        " WHERE d.event = 'fired' AND d.status = 'delivered'"
        " AND a.fired_at >= $1 AND a.fired_at < $2 GROUP BY d.channel ORDER BY d.channel",
        since,
        until,
    )
