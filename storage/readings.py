"""The readings table: group-committed COPY writes (psycopg) and time-ordered reads (asyncpg).

Timestamps cross this module as integer microseconds since the Unix epoch, so that no
float rounding can ever make two readings of one device collide or a duplicate slip in.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import numpy as np
import psycopg

from storage.access import Grant, device_relation, grant_of
from storage.alerts import AlertWrite, write_in_transaction

WEEK_US = 7 * 86_400 * 1_000_000
# date_bin origin of the weekly partitions (a Monday), in microseconds since the epoch.
_PARTITION_ORIGIN_US = 946_857_600 * 1_000_000

_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS readings_staging (
    device_id    uuid NOT NULL,
    ts_us        bigint NOT NULL,
    value        double precision NOT NULL,
    rate_per_min real,
    direction    text
) ON COMMIT DELETE ROWS
"""
_MERGE = """
INSERT INTO readings (device_id, ts, value, rate_per_min, direction)
SELECT device_id, timestamptz 'epoch' + ts_us * interval '1 microsecond',
       value, rate_per_min, direction
FROM readings_staging
ON CONFLICT (device_id, ts) DO NOTHING
RETURNING device_id, (extract(epoch FROM ts) * 1000000)::bigint
"""


# Binary COPY: no text formatting or escaping of each value, on either side.
_COPY = (
    "COPY readings_staging (device_id, ts_us, value, rate_per_min, direction)"
    " FROM STDIN (FORMAT BINARY)"
)
_COPY_TYPES = ["uuid", "int8", "float8", "float4", "text"]


@dataclass(slots=True)
class DeviceRows:
    """New readings of one device, in columns."""

    device_id: UUID
    ts_us: np.ndarray  # int64
    values: np.ndarray  # float64
    rate_per_min: np.ndarray  # float64, NaN where not computable
    direction: list[str]
    # Evaluator state, alert changes and the live NOTIFY, written in the same transaction.
    alert: AlertWrite | None = None

    def __len__(self) -> int:
        return int(self.ts_us.size)


class ReadingsWriter:
    """Writes batches of many devices in one transaction over one psycopg connection."""

    def __init__(self, conn: psycopg.AsyncConnection) -> None:
        self._conn = conn
        self._weeks_ready: set[int] = set()
        self._staging_ready = False

    async def write(self, groups: list[DeviceRows]) -> list[np.ndarray]:
        """Store the rows; returns, per group, a mask of the rows that were new.

        Rows whose ``(device_id, ts)`` is already stored are left untouched (duplicates).
        Everything happens in one transaction: on error nothing is stored.
        """
        writes = [g.alert for g in groups if g.alert is not None]
        groups = [g for g in groups if len(g)]
        if not groups and not writes:
            return []
        if groups:
            await self._ensure_partitions(groups)
        conn = self._conn
        if not self._staging_ready:
            await conn.execute(_STAGING_DDL)
            self._staging_ready = True
        async with conn.transaction(), conn.cursor() as cur:
            if groups:
                async with cur.copy(_COPY) as copy:
                    copy.set_types(_COPY_TYPES)
                    for g in groups:
                        await _copy_rows(copy, g)
            inserted: set[tuple[UUID, int]] = set()
            if groups:
                await cur.execute(_MERGE)
                inserted = {(row[0], int(row[1])) for row in await cur.fetchall()}
            if writes:
                await write_in_transaction(cur, writes)
        return [
            np.fromiter(
                ((g.device_id, int(t)) in inserted for t in g.ts_us), dtype=bool, count=len(g)
            )
            for g in groups
        ]

    async def _ensure_partitions(self, groups: list[DeviceRows]) -> None:
        """Create the weekly partition of every week that receives a row, and of no other:
        a batch spanning years (a backfill plus today) creates two partitions, not hundreds,
        each taking locks every later query on ``readings`` must share."""
        weeks = set()
        for g in groups:
            weeks.update(np.unique((g.ts_us - _PARTITION_ORIGIN_US) // WEEK_US).tolist())
        missing = sorted(weeks - self._weeks_ready)
        if not missing:
            return
        starts = [_PARTITION_ORIGIN_US + week * WEEK_US for week in missing]
        async with self._conn.transaction():
            await self._conn.execute(
                "SELECT vigil_ensure_readings_partitions(w, w) FROM (SELECT timestamptz 'epoch'"
                " + us * interval '1 microsecond' AS w FROM unnest(%s::bigint[]) AS us) AS weeks",
                (starts,),
            )
        self._weeks_ready.update(missing)


async def _copy_rows(copy: psycopg.AsyncCopy, g: DeviceRows) -> None:
    dev = g.device_id
    rates = [None if r != r else r for r in g.rate_per_min.tolist()]  # NaN: not computable
    for ts, value, rate, arrow in zip(
        g.ts_us.tolist(), g.values.tolist(), rates, g.direction, strict=True
    ):
        await copy.write_row((dev, ts, value, rate, arrow))


@dataclass(frozen=True, slots=True)
class StoredReadings:
    ts_us: np.ndarray
    values: np.ndarray


async def recent_readings(
    conn: psycopg.AsyncConnection, device_id: UUID, span_us: int
) -> StoredReadings:
    """A device's last ``span_us`` of readings (up to its newest), oldest first.

    This is what a device actor rebuilds its stream state from after a restart.
    """
    cur = await conn.execute(
        "SELECT (extract(epoch FROM ts) * 1000000)::bigint, value FROM readings"
        " WHERE device_id = %s AND ts >= (SELECT max(ts) FROM readings WHERE device_id = %s)"
        " - %s * interval '1 microsecond' ORDER BY ts",
        (device_id, device_id, span_us),
    )
    rows = await cur.fetchall()
    return StoredReadings(
        ts_us=np.array([r[0] for r in rows], dtype=np.int64),
        values=np.array([r[1] for r in rows], dtype=np.float64),
    )


@dataclass(frozen=True, slots=True)
class ReadAudit:
    """Who reads, how and from where: the audit log entry of a read."""

    actor_id: UUID
    action: str
    client_addr: str | None
    user_agent: str | None


@dataclass(frozen=True, slots=True)
class AuditedRead:
    device: asyncpg.Record | None  # None: no relation to the device (or no such device)
    grant: Grant | None
    rows: list[asyncpg.Record]


# One statement, one round trip: the caller's grant on the device (an active account, an
# active share: checked on every read, never cached), the audit entry written only if the
# grant allows ``scope`` (committed with the read: never dropped), and the readings.
_AUDITED_READ = """
WITH g AS (SELECT {relation} WHERE d.id = $1),
ok AS (SELECT * FROM g WHERE g.is_manager OR $3 = ANY(g.scopes)),
logged AS (
    INSERT INTO audit_log
        (actor_kind, actor_id, profile_id, device_id, action, client_addr, user_agent)
    SELECT 'user', $2, ok.profile_id, ok.id, $4, $5, $6 FROM ok
),
r AS (
    SELECT ts, value, rate_per_min, direction FROM readings
    WHERE device_id = $1 AND EXISTS (SELECT 1 FROM ok){clauses} ORDER BY ts {order} LIMIT $7
)
SELECT 0 AS part, g.*, NULL::timestamptz AS ts, NULL::float8 AS value,
       NULL::real AS rate_per_min, NULL::text AS direction FROM g
UNION ALL
SELECT 1, {nulls}, r.ts, r.value, r.rate_per_min, r.direction FROM r
ORDER BY part, ts {order}
"""
_DEVICE_NULLS = (
    "NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::integer, NULL::timestamptz,"
    " NULL::uuid, NULL::boolean, NULL::text[]"
)


@functools.cache
def _audited_read_sql(latest: bool, since: bool, until: bool) -> str:
    """The statement for a read's shape (built once per shape, not per request); the
    bounds that are given follow the seven fixed parameters, ``start`` first."""
    clauses, n = "", 7
    for op, given in ((">=", since), ("<", until)):
        if given:
            n += 1
            clauses += f" AND ts {op} ${n}"
    return _AUDITED_READ.format(
        relation=device_relation("$2"),
        clauses=clauses,
        order="DESC" if latest else "ASC",
        nulls=_DEVICE_NULLS,
    )


async def audited_read(
    pool: asyncpg.Pool,
    audit: ReadAudit,
    device_id: UUID,
    scope: str,
    *,
    latest: bool = False,
    start: datetime | None = None,
    end: datetime | None = None,
    limit: int = 1,
) -> AuditedRead:
    """A device's readings for ``audit.actor_id`` if its grant allows ``scope``: the latest
    one (``latest``), or those in ``[start, end)`` in time order, at most ``limit``."""
    args: list = [device_id, audit.actor_id, scope, audit.action, audit.client_addr]
    args += [(audit.user_agent or "")[:300] or None, limit]
    args += [bound for bound in (start, end) if bound is not None]
    sql = _audited_read_sql(latest, start is not None, end is not None)
    rows = await pool.fetch(sql, *args)
    if not rows or rows[0]["part"] != 0:
        return AuditedRead(None, None, [])
    return AuditedRead(rows[0], grant_of(rows[0]), rows[1:])


async def list_readings(
    pool: asyncpg.Pool,
    device_id: UUID,
    start: datetime | None,
    end: datetime | None,
    limit: int,
) -> list[asyncpg.Record]:
    """Readings in time order within ``[start, end)``, at most ``limit``."""
    clauses: list[str] = ["device_id = $1"]
    args: list[Any] = [device_id]
    for op, bound in ((">=", start), ("<", end)):
        if bound is not None:
            args.append(bound)
            clauses.append(f"ts {op} ${len(args)}")
    args.append(limit)
    return await pool.fetch(
        "SELECT ts, value, rate_per_min, direction FROM readings"
        f" WHERE {' AND '.join(clauses)} ORDER BY ts LIMIT ${len(args)}",
        *args,
    )
