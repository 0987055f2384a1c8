"""Context events of a profile: meals, exercise, insulin, medication, sleep, notes, custom."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import psycopg
from psycopg.rows import dict_row

_COLUMNS = "id, profile_id, kind, ts, end_ts, details, note, created_at, updated_at"


def _record(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    details = out.get("details")
    out["details"] = json.loads(details) if isinstance(details, str) else (details or {})
    return out


async def create_event(
    pool: asyncpg.Pool,
    profile_id: UUID,
    created_by: UUID,
    kind: str,
    ts: datetime,
    end_ts: datetime | None,
    details: dict[str, Any],
    note: str | None,
    idempotency_key: str | None,
    nightscout: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], bool]:
    """Store an event; returns it and whether it is new.

    With an idempotency key already used for this profile, the stored event is returned
    unchanged (``False``): a retried create never stores a second event. ``nightscout``:
    the treatment document as a Nightscout client sent it (kept to answer it back)."""
    row = await pool.fetchrow(
        "INSERT INTO events (profile_id, created_by, kind, ts, end_ts, details, note,"
        " idempotency_key, nightscout) VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9::jsonb)"
        " ON CONFLICT (profile_id, idempotency_key) WHERE idempotency_key IS NOT NULL"
        f" DO NOTHING RETURNING {_COLUMNS}",
        profile_id,
        created_by,
        kind,
        ts,
        end_ts,
        json.dumps(details),
        note,
        idempotency_key,
        None if nightscout is None else json.dumps(nightscout),
    )
    if row is not None:
        return _record(row), True
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM events WHERE profile_id = $1 AND idempotency_key = $2",
        profile_id,
        idempotency_key,
    )
    return _record(row), False


async def get_event(pool: asyncpg.Pool, profile_id: UUID, event_id: UUID) -> dict | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM events WHERE profile_id = $1 AND id = $2", profile_id, event_id
    )
    return None if row is None else _record(row)


async def update_event(
    pool: asyncpg.Pool,
    profile_id: UUID,
    event_id: UUID,
    kind: str,
    ts: datetime,
    end_ts: datetime | None,
    details: dict[str, Any],
    note: str | None,
) -> dict | None:
    row = await pool.fetchrow(
        "UPDATE events SET kind = $7, ts = $3, end_ts = $4, details = $5::jsonb, note = $6,"
        f" updated_at = now() WHERE profile_id = $1 AND id = $2 RETURNING {_COLUMNS}",
        profile_id,
        event_id,
        ts,
        end_ts,
        json.dumps(details),
        note,
        kind,
    )
    return None if row is None else _record(row)


async def delete_event(pool: asyncpg.Pool, profile_id: UUID, event_id: UUID) -> bool:
    status = await pool.execute(
        "DELETE FROM events WHERE profile_id = $1 AND id = $2", profile_id, event_id
    )
    return status.endswith(" 1")


async def list_events(
    pool: asyncpg.Pool,
    profile_id: UUID,
    start: datetime | None,
    end: datetime | None,
    kinds: Sequence[str] | None = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Events whose time is within ``[start, end)``, in time order."""
    rows = await pool.fetch(
        f"SELECT {_COLUMNS} FROM events WHERE profile_id = $1"
        " AND ($2::timestamptz IS NULL OR ts >= $2) AND ($3::timestamptz IS NULL OR ts < $3)"
        " AND ($4::text[] IS NULL OR kind = ANY ($4)) ORDER BY ts, id LIMIT $5",
        profile_id,
        start,
        end,
        kinds,
        limit,
    )
    return [_record(r) for r in rows]


def list_events_sync(
    conn: psycopg.Connection, profile_id: UUID, start: datetime, end: datetime
) -> list[dict[str, Any]]:
    """The same as :func:`list_events`, for batch jobs on a psycopg connection."""
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(
            f"SELECT {_COLUMNS} FROM events WHERE profile_id = %s AND ts >= %s AND ts < %s"
            " ORDER BY ts, id",
            (profile_id, start, end),
        ).fetchall()
