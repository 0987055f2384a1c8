"""Who gets an alert and how: notification preferences, webhooks, push tokens, delivery log."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from uuid import UUID

import asyncpg

from storage import live

# --- recipients (for the notifier) ------------------------------------------------------

# A person's preferences when they saved none (what _RECIPIENTS's coalesce gives).
DEFAULT_PREFS = {
    "rules": None,
    "channels": ["stream", "push", "email", "webhook"],
    "quiet": [],
    "timezone": "UTC",
    "escalation_only": False,
}

# A webhook's valid secrets: its own, and the one it replaced while that still signs.
_SECRETS = """array_remove(ARRAY[w.secret, CASE WHEN w.previous_secret_expires_at > now()
                        THEN w.previous_secret END], NULL)"""

_RECIPIENTS = """
SELECT u.id AS user_id, u.email, p.manager_id = u.id AS is_manager,
       np.rules, coalesce(np.channels, ARRAY['stream', 'push', 'email', 'webhook']) AS channels,
       coalesce(np.quiet, '[]'::jsonb) AS quiet, coalesce(np.timezone, p.timezone) AS timezone,
       coalesce(np.escalation_only, false) AS escalation_only,
       coalesce((SELECT json_agg(json_build_object('id', w.id, 'url', w.url, 'secrets',
                    {secrets}))
                 FROM webhooks w WHERE w.user_id = u.id), '[]') AS webhooks,
       coalesce((SELECT json_agg(json_build_object('id', t.id, 'platform', t.platform,
                                                   'token', t.token))
                 FROM push_tokens t WHERE t.user_id = u.id), '[]') AS push_tokens,
       ap.acknowledged_at IS NOT NULL AS acknowledged_for_self,
       extract(epoch FROM ap.snoozed_until)::float8 AS snoozed_for_self_until
FROM profiles p
JOIN users u ON u.disabled_at IS NULL AND (u.id = p.manager_id OR EXISTS (
    SELECT 1 FROM shares s WHERE s.profile_id = p.id AND s.follower_id = u.id
    AND s.state = 'active' AND 'alerts' = ANY (s.scopes)))
LEFT JOIN notification_prefs np ON np.user_id = u.id AND np.profile_id = p.id
LEFT JOIN alert_personal ap ON ap.alert_id = $2 AND ap.user_id = u.id
WHERE p.id = $1
"""


async def recipients(pool: asyncpg.Pool, profile_id: UUID, alert_id: UUID) -> list[dict]:
    """The profile's manager and every follower with the `alerts` scope, with their
    preferences, endpoints and what they did about ``alert_id`` for themselves only."""
    rows = await pool.fetch(_RECIPIENTS.format(secrets=_SECRETS), profile_id, alert_id)
    out = []
    for r in rows:
        d = dict(r)
        for key in ("quiet", "webhooks", "push_tokens"):
            if isinstance(d[key], str):
                d[key] = json.loads(d[key])
        out.append(d)
    return out


async def log_delivery(
    pool: asyncpg.Pool,
    alert_id: UUID,
    event: str,
    user_id: UUID | None,
    channel: str,
    target: str | None,
    attempt: int,
    status: str,
    detail: str | None = None,
) -> None:
    await pool.execute(
        "INSERT INTO alert_deliveries (alert_id, event, user_id, channel, target, attempt,"
        " status, detail) SELECT $1, $2, $3, $4, $5, $6, $7, $8"
        " WHERE EXISTS (SELECT 1 FROM alerts WHERE id = $1)",
        alert_id,
        event,
        user_id,
        channel,
        target,
        attempt,
        status,
        detail,
    )


async def log_stream_deliveries(pool: asyncpg.Pool, rows: list[tuple]) -> None:
    """(alert_id, event, user_id, at) of alert events sent on live streams."""
    await pool.executemany(
        "INSERT INTO alert_deliveries (alert_id, event, user_id, channel, status, at)"
        " SELECT $1, $2, $3, 'stream', 'delivered', $4"
        " WHERE EXISTS (SELECT 1 FROM alerts WHERE id = $1)",
        rows,
    )


async def deliveries(pool: asyncpg.Pool, alert_id: UUID, user_id: UUID) -> list[asyncpg.Record]:
    """One person's deliveries of an alert (nobody sees whom else it reached, or how)."""
    return await pool.fetch(
        "SELECT event, user_id, channel, target, attempt, status, detail, at"
        " FROM alert_deliveries WHERE alert_id = $1 AND user_id = $2 ORDER BY at, id",
        alert_id,
        user_id,
    )


async def forget_push_token(pool: asyncpg.Pool, token_id: UUID) -> None:
    await pool.execute("DELETE FROM push_tokens WHERE id = $1", token_id)


_ALERT_FIELDS = (
    "a.id, a.profile_id, a.device_id, a.rule, a.severity, a.value, a.threshold,"
    " extract(epoch FROM a.reading_ts)::float8 AS ts,"
    " extract(epoch FROM a.received_at)::float8 AS rx,"
    " extract(epoch FROM a.fired_at)::float8 AS at"
)


async def due_escalations(pool: asyncpg.Pool, now: datetime) -> list[asyncpg.Record]:
    """Urgent alerts nobody acknowledged within the profile's escalation time: marked
    escalated (once) and returned."""
    return await pool.fetch(
        "UPDATE alerts a SET escalated_at = now() FROM profiles p"
        " LEFT JOIN alert_settings s ON s.profile_id = p.id"
        " WHERE p.id = a.profile_id AND a.severity = 'urgent' AND a.state = 'fired'"
        " AND a.escalated_at IS NULL"
        " AND a.fired_at <= $1::timestamptz - make_interval(mins => coalesce(s.escalation_min, 15))"
        f" RETURNING {_ALERT_FIELDS}",
        now,
    )


async def undelivered(
    pool: asyncpg.Pool, before: datetime, window_s: float = 600
) -> list[asyncpg.Record]:
    """Unacknowledged alerts whose last notification (the firing, or a repeat) happened
    recently (before ``before``) and was not handed to any channel since: what a
    (re)starting notifier missed while nobody listened. ``notifications`` says which it was
    (1: the firing)."""
    last = "a.notified_at[cardinality(a.notified_at)]"
    return await pool.fetch(
        f"SELECT {_ALERT_FIELDS}, cardinality(a.notified_at) AS notifications"
        " FROM alerts a WHERE a.state = 'fired' AND cardinality(a.notified_at) > 0"
        f" AND {last} < $1 AND {last} > $1 - make_interval(secs => $2)"
        " AND NOT EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = a.id"
        f"   AND d.channel <> 'stream' AND d.at >= {last})"
        " AND NOT EXISTS (SELECT 1 FROM delivery_queue q WHERE q.alert_id = a.id"
        f"   AND q.created_at >= {last})",
        before,
        window_s,
    )


# --- the delivery queue: what is still to be delivered, across notifier restarts ---------


# Held while one alert's deliveries are queued (two-key form: apart from the one-key locks).
_ENQUEUE_LOCK = 7311003

# Queue a delivery unless the same notification (a firing or a repeat, since the alert's last
# notified_at) already went to the same person, channel and endpoint: a notifier's catch-up at
# start and the NOTIFY of an alert committed as its LISTEN began both dispatch it, and the
# receiver must get it once (one webhook-id), not twice.
_ENQUEUE = """
INSERT INTO delivery_queue (delivery_id, alert_id, event, user_id, channel, webhook_id,
                            push_token_id, target, payload, next_at)
SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9::jsonb, now() + make_interval(secs => $10)
FROM alerts a
WHERE a.id = $2 AND NOT ($3 IN ('fired', 'repeated') AND (
    EXISTS (SELECT 1 FROM delivery_queue q WHERE q.alert_id = $2 AND q.event = $3
            AND q.user_id = $4 AND q.channel = $5 AND q.webhook_id IS NOT DISTINCT FROM $6
            AND q.push_token_id IS NOT DISTINCT FROM $7
            AND q.created_at >= a.notified_at[cardinality(a.notified_at)])
    OR EXISTS (SELECT 1 FROM alert_deliveries d WHERE d.alert_id = $2 AND d.event = $3
            AND d.user_id = $4 AND d.channel = $5 AND d.target IS NOT DISTINCT FROM $8
            AND d.at >= a.notified_at[cardinality(a.notified_at)])))
RETURNING id
"""


async def enqueue(pool: asyncpg.Pool, jobs: list[tuple], claim_s: float) -> list[int]:
    """Queue deliveries, claimed for ``claim_s`` by the caller who makes the first attempt
    now. ``jobs``: (delivery_id, alert_id, event, user_id, channel, webhook_id,
    push_token_id, target, payload as JSON text). Returns their ids, in order; a delivery
    of an alert deleted meanwhile, or of a notification already queued or attempted for the
    same person and endpoint, is not queued (id 0)."""
    async with pool.acquire() as conn, conn.transaction():
        for alert_id in sorted({str(job[1]) for job in jobs}):  # one order: no deadlock
            await conn.execute(
                "SELECT pg_advisory_xact_lock($1, hashtext($2))", _ENQUEUE_LOCK, alert_id
            )
        ids = []
        for job in jobs:
            ids.append(await conn.fetchval(_ENQUEUE, *job, claim_s) or 0)
        return ids


_JOB = """
SELECT q.id AS job_id, q.delivery_id, q.event, q.user_id, q.channel, q.target, q.payload,
       q.attempts, extract(epoch FROM q.created_at)::float8 AS first_s, u.email,
       w.url, {secrets} AS secrets,
       t.id AS token_id, t.token, {alert}
FROM delivery_queue q
JOIN alerts a ON a.id = q.alert_id
JOIN users u ON u.id = q.user_id
LEFT JOIN webhooks w ON w.id = q.webhook_id
LEFT JOIN push_tokens t ON t.id = q.push_token_id
WHERE q.id = ANY($1::bigint[])
ORDER BY q.id
"""


async def queued(pool: asyncpg.Pool, ids: list[int]) -> list[asyncpg.Record]:
    """The queued deliveries ``ids`` with what an attempt needs: the alert, the endpoint
    as it is now (URL and valid secrets, push token, email address)."""
    return await pool.fetch(_JOB.format(alert=_ALERT_FIELDS, secrets=_SECRETS), ids)


async def claim_due(
    pool: asyncpg.Pool, claim_s: float, limit: int, skip: list[int]
) -> list[asyncpg.Record]:
    """Queued deliveries due now (but not ``skip``, what the caller is already on), claimed
    for ``claim_s`` so that nobody else attempts them meanwhile."""
    ids = await pool.fetch(
        "UPDATE delivery_queue SET next_at = now() + make_interval(secs => $1)"
        " WHERE id IN (SELECT id FROM delivery_queue WHERE next_at <= now()"
        " AND id <> ALL($3::bigint[]) ORDER BY next_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
        " RETURNING id",
        claim_s,
        limit,
        skip,
    )
    return await queued(pool, [r["id"] for r in ids])


async def reschedule(pool: asyncpg.Pool, job_id: int, attempts: int, next_s: float) -> None:
    """An attempt failed for now: try again at ``next_s`` (epoch seconds)."""
    await pool.execute(
        "UPDATE delivery_queue SET attempts = $2, next_at = to_timestamp($3) WHERE id = $1",
        job_id,
        attempts,
        next_s,
    )


async def dequeue(pool: asyncpg.Pool, job_id: int) -> None:
    """Delivered, refused for good or given up: no more attempts."""
    await pool.execute("DELETE FROM delivery_queue WHERE id = $1", job_id)


# --- the API's side: preferences and endpoints -------------------------------------------


async def get_prefs(pool: asyncpg.Pool, user_id: UUID, profile_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT rules, channels, quiet, timezone, escalation_only, updated_at"
        " FROM notification_prefs WHERE user_id = $1 AND profile_id = $2",
        user_id,
        profile_id,
    )


async def put_prefs(
    pool: asyncpg.Pool,
    user_id: UUID,
    profile_id: UUID,
    rules: list[str] | None,
    channels: list[str],
    quiet: list[dict],
    timezone: str,
    escalation_only: bool,
) -> asyncpg.Record:
    """Save, and tell every replica's live streams (they filter by these too)."""
    async with pool.acquire() as conn, conn.transaction():
        await live.publish(conn, live.PersonalChanged(profile_id, user_id))
        return await conn.fetchrow(
            "INSERT INTO notification_prefs AS n (user_id, profile_id, rules, channels, quiet,"
            " timezone, escalation_only) VALUES ($1, $2, $3, $4, $5::jsonb, $6, $7)"
            " ON CONFLICT (user_id, profile_id) DO UPDATE SET rules = EXCLUDED.rules,"
            " channels = EXCLUDED.channels, quiet = EXCLUDED.quiet, timezone = EXCLUDED.timezone,"
            " escalation_only = EXCLUDED.escalation_only, updated_at = now()"
            " RETURNING rules, channels, quiet, timezone, escalation_only, updated_at",
            user_id,
            profile_id,
            rules,
            channels,
            json.dumps(quiet),
            timezone,
            escalation_only,
        )


class TooManyWebhooks(Exception):
    """The user has as many webhooks as one account may have."""


async def add_webhook(pool: asyncpg.Pool, user_id: UUID, url: str, limit: int) -> asyncpg.Record:
    """A new webhook; TooManyWebhooks when the user has ``limit`` already (the user's row is
    locked, so two concurrent registrations cannot both take the last place)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", user_id)
        taken = await conn.fetchval("SELECT count(*) FROM webhooks WHERE user_id = $1", user_id)
        if taken >= limit:
            raise TooManyWebhooks(user_id)
        return await conn.fetchrow(
            "INSERT INTO webhooks (user_id, url, secret) VALUES ($1, $2, $3)"
            " RETURNING id, url, secret, created_at",
            user_id,
            url,
            new_webhook_secret(),
        )


def new_webhook_secret() -> str:
    """A Standard Webhooks secret: ``whsec_`` and base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


async def rotate_webhook_secret(
    pool: asyncpg.Pool, user_id: UUID, webhook_id: UUID, overlap_s: float
) -> asyncpg.Record | None:
    """A new secret for the user's webhook; the one it replaces keeps signing beside it for
    ``overlap_s`` seconds. None when the user has no such webhook."""
    return await pool.fetchrow(
        "UPDATE webhooks SET previous_secret = secret, secret = $3,"
        " previous_secret_expires_at = now() + make_interval(secs => $4)"
        " WHERE id = $1 AND user_id = $2"
        " RETURNING id, url, secret, created_at, previous_secret_expires_at",
        webhook_id,
        user_id,
        new_webhook_secret(),
        overlap_s,
    )


async def list_webhooks(pool: asyncpg.Pool, user_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, url, created_at FROM webhooks WHERE user_id = $1 ORDER BY created_at",
        user_id,
    )


async def delete_webhook(
    pool: asyncpg.Pool, user_id: UUID, webhook_id: UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "DELETE FROM webhooks WHERE id = $1 AND user_id = $2 RETURNING id, url, created_at",
        webhook_id,
        user_id,
    )


# A token's holder who can still sign in: an enabled account with a live login.
_HOLDER_SIGNED_IN = """EXISTS (
    SELECT 1 FROM users u JOIN refresh_tokens r ON r.user_id = u.id
    WHERE u.id = push_tokens.user_id AND u.disabled_at IS NULL
    AND r.revoked_at IS NULL AND r.expires_at > now())"""


async def add_push_token(
    pool: asyncpg.Pool, user_id: UUID, platform: str, token: str
) -> asyncpg.Record | None:
    """Register a phone's token for the caller. A token held by another account moves only
    when that account is signed out everywhere (or disabled): a phone handed on after its
    owner logged out registers again; anyone else gets None (the caller's 409), so nobody
    can divert someone's alerts, or push theirs onto someone's phone, by knowing a token."""
    return await pool.fetchrow(
        "INSERT INTO push_tokens (user_id, platform, token) VALUES ($1, $2, $3)"
        " ON CONFLICT (platform, token) DO UPDATE SET user_id = EXCLUDED.user_id,"
        " created_at = now()"
        f" WHERE push_tokens.user_id = EXCLUDED.user_id OR NOT {_HOLDER_SIGNED_IN}"
        " RETURNING id, platform, token, created_at",
        user_id,
        platform,
        token,
    )


async def list_push_tokens(pool: asyncpg.Pool, user_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, platform, token, created_at FROM push_tokens WHERE user_id = $1"
        " ORDER BY created_at",
        user_id,
    )


async def delete_push_token(
    pool: asyncpg.Pool, user_id: UUID, token_id: UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "DELETE FROM push_tokens WHERE id = $1 AND user_id = $2"
        " RETURNING id, platform, token, created_at",
        token_id,
        user_id,
    )
