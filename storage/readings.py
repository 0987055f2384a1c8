"""The readings table: group-committed COPY writes (psycopg) and time-ordered reads (asyncpg).

Timestamps cross this module as integer microseconds since the Unix epoch, so that no
float rounding can ever make two readings of one device collide or a duplicate slip in.
"""

from __future__ import annotations

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

# The incoming rows of one group commit, fixed-width so that a whole commit is one binary COPY
# payload built by numpy (no per-row Python): ``idx`` numbers the rows across the commit, a
# NaN rate stands for "not computable" (NULL in ``readings``) and ``direction`` is an index
# into ``DIRECTIONS`` (1-based, as PostgreSQL's arrays; 0 is NULL).
_STAGING_DDL = """
CREATE TEMP TABLE IF NOT EXISTS readings_incoming (
    idx          integer NOT NULL,
    device_id    uuid NOT NULL,
    ts           timestamptz NOT NULL,
    value        double precision NOT NULL,
    rate_per_min real NOT NULL,
    direction    smallint NOT NULL
) ON COMMIT DELETE ROWS
"""
# The trend arrows a reading is stored with (``algorithms.trend.Direction``; a test holds the
# two lists equal: storage depends on nothing of ours).
DIRECTIONS: tuple[str, ...] = (
    "DoubleUp", "SingleUp", "FortyFiveUp", "Flat", "FortyFiveDown", "SingleDown", "DoubleDown",
    "NOT COMPUTABLE",
)  # fmt: skip
_DIRECTION_CODE = {name: code for code, name in enumerate(DIRECTIONS, start=1)}
_DIRECTION_ARRAY = "ARRAY[" + ", ".join(f"'{d}'" for d in DIRECTIONS) + "]::text[]"
# Stores the rows not already stored and answers which of them (their ``idx``), as one array.
_MERGE = f"""
WITH stored AS (
    INSERT INTO readings (device_id, ts, value, rate_per_min, direction)
    SELECT device_id, ts, value, NULLIF(rate_per_min, 'NaN'), ({_DIRECTION_ARRAY})[direction]
    FROM readings_incoming
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts
)
SELECT coalesce(array_agg(i.idx), '{{}}') FROM stored JOIN readings_incoming i USING (device_id, ts)
"""
_COPY = (
    "COPY readings_incoming (idx, device_id, ts, value, rate_per_min, direction)"
    " FROM STDIN (FORMAT BINARY)"
)
# Binary COPY: a signature and header, then per row the field count and each field's length
# and big-endian value; timestamps count microseconds from 2000-01-01.
_COPY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
_COPY_TRAILER = b"\xff\xff"
_PG_EPOCH_US = 946_684_800 * 1_000_000
_COPY_ROW = np.dtype(
    [("n", ">i2"), ("l_idx", ">i4"), ("idx", ">i4"), ("l_dev", ">i4"), ("dev", "V16"),
     ("l_ts", ">i4"), ("ts", ">i8"), ("l_v", ">i4"), ("v", ">f8"), ("l_r", ">i4"),
     ("r", ">f4"), ("l_d", ">i4"), ("d", ">i2")]
)  # fmt: skip


_COPY_DIRECT = (
    "COPY readings (device_id, ts, value, rate_per_min, direction) FROM STDIN (FORMAT BINARY)"
)


def direct_copy_payload(groups: list[DeviceRows]) -> bytes:
    """The rows of ``groups`` as one binary COPY payload for ``readings`` itself. Its rows
    differ in width only by their rate (NULL or not) and arrow, so they are built by numpy
    one kind of row at a time (the order of a COPY's rows does not matter)."""
    rows = _incoming_rows(groups)
    null_rate = np.isnan(rows["r"])
    parts = []
    for code in np.unique(rows["d"]).tolist():
        arrow = DIRECTIONS[code - 1].encode()
        for null in (False, True):
            chosen = rows[(rows["d"] == code) & (null_rate == null)]
            if not chosen.size:
                continue
            rate = [] if null else [("r", ">f4")]
            out = np.zeros(chosen.size, np.dtype(
                [("n", ">i2"), ("l_dev", ">i4"), ("dev", "V16"), ("l_ts", ">i4"), ("ts", ">i8"),
                 ("l_v", ">i4"), ("v", ">f8"), ("l_r", ">i4"), *rate, ("l_d", ">i4"),
                 ("d", f"S{len(arrow)}")]
            ))  # fmt: skip
            out["n"], out["l_dev"], out["l_ts"], out["l_v"] = 5, 16, 8, 8
            out["l_r"] = -1 if null else 4
            out["l_d"], out["d"] = len(arrow), arrow
            for field in ("dev", "ts", "v", *([] if null else ["r"])):
                out[field] = chosen[field]
            parts.append(out.tobytes())
    return _COPY_HEADER + b"".join(parts) + _COPY_TRAILER


def copy_payload(groups: list[DeviceRows]) -> bytes:
    """The rows of ``groups`` as one binary COPY payload for ``readings_incoming``, numbered
    in order across the groups."""
    return _COPY_HEADER + _incoming_rows(groups).tobytes() + _COPY_TRAILER


def _incoming_rows(groups: list[DeviceRows]) -> np.ndarray:
    """The rows of ``groups`` as ``readings_incoming`` rows of binary COPY, in an array."""
    sizes = [len(g) for g in groups]
    rows = np.zeros(sum(sizes), _COPY_ROW)
    rows["n"] = 6
    rows["l_idx"], rows["l_dev"], rows["l_ts"], rows["l_v"], rows["l_r"], rows["l_d"] = (
        4, 16, 8, 8, 4, 2
    )  # fmt: skip
    rows["idx"] = np.arange(rows.size)
    devices = np.frombuffer(b"".join(g.device_id.bytes for g in groups), "V16")
    rows["dev"] = np.repeat(devices, sizes)
    rows["ts"] = np.concatenate([g.ts_us for g in groups]) - _PG_EPOCH_US
    rows["v"] = np.concatenate([g.values for g in groups])
    rows["r"] = np.concatenate([g.rate_per_min for g in groups])
    try:
        rows["d"] = [_DIRECTION_CODE[d] for g in groups for d in g.direction]
    except KeyError as unknown:
        raise ValueError(f"unknown trend direction {unknown.args[0]!r}") from None
    return rows


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
    # Every row is newer than any the device's actor knows stored: none can be a duplicate,
    # so the rows go straight into ``readings`` (a duplicate after all, written by another
    # path, makes the commit fall back to the de-duplicating write; nothing is lost).
    after_stored: bool = False

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
        try:
            return await self._write(groups, writes, direct=True)
        except psycopg.errors.UniqueViolation:
            # A row the actor did not know stored (another writer): de-duplicate instead.
            return await self._write(groups, writes, direct=False)

    async def _write(
        self, groups: list[DeviceRows], writes: list[AlertWrite], *, direct: bool
    ) -> list[np.ndarray]:
        """One transaction; ``direct``: the rows of groups ``after_stored`` straight in."""
        straight = [direct and g.after_stored for g in groups]
        fresh = [g for g, s in zip(groups, straight, strict=True) if s]
        others = [g for g, s in zip(groups, straight, strict=True) if not s]
        new = np.zeros(sum(len(g) for g in others), dtype=bool)
        conn = self._conn
        async with conn.transaction(), conn.cursor() as cur:
            if fresh:
                async with cur.copy(_COPY_DIRECT) as copy:
                    await copy.write(direct_copy_payload(fresh))
            if others:
                async with cur.copy(_COPY) as copy:
                    await copy.write(copy_payload(others))
                await cur.execute(_MERGE)
                row = await cur.fetchone()
                assert row is not None  # an aggregate answers one row
                new[np.asarray(row[0], dtype=np.int64)] = True
            if writes:
                await write_in_transaction(cur, writes)
        masks = iter(np.split(new, np.cumsum([len(g) for g in others[:-1]])) if others else [])
        return [
            np.ones(len(g), dtype=bool) if s else next(masks)
            for g, s in zip(groups, straight, strict=True)
        ]

    async def _ensure_partitions(self, groups: list[DeviceRows]) -> None:
        """Create the weekly partition of every week that receives a row, and of no other:
        a batch spanning years (a backfill plus today) creates two partitions, not hundreds,
        each taking locks every later query on ``readings`` must share."""
        ts_us = np.concatenate([g.ts_us for g in groups])  # one pass, not one per device
        weeks = set(np.unique((ts_us - _PARTITION_ORIGIN_US) // WEEK_US).tolist())
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


@dataclass(frozen=True, slots=True)
class ReadRequest:
    """One audited read: ``audit.actor_id`` reads ``device_id`` if its grant allows
    ``scope``: the latest reading (``latest``), or those in ``[start, end)`` in time order,
    at most ``limit``."""

    audit: ReadAudit
    device_id: UUID
    scope: str
    latest: bool = False
    start: datetime | None = None
    end: datetime | None = None
    limit: int = 1


# One statement, one round trip, for any number of reads (those a replica received at
# once): each caller's grant on its device (an active account, an active share: checked by
# the statement that reads, never cached), each read's audit entry written only if its grant
# allows its scope (committed with the read: never dropped), and the readings. ``n`` numbers
# the reads; the answer is each read's device row (part 0), then its readings (part 1).
_AUDITED_READS = """
WITH q AS (
    SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                         $6::text[], $7::boolean[], $8::timestamptz[], $9::timestamptz[],
                         $10::integer[])
        WITH ORDINALITY AS q(device_id, actor_id, scope, action, client_addr, user_agent,
                             latest, since, until, lim, n)
),
g AS (
    SELECT q.n, rel.* FROM q CROSS JOIN LATERAL (
        SELECT {relation} WHERE d.id = q.device_id
    ) rel
),
ok AS (SELECT q.* FROM g JOIN q USING (n) WHERE g.is_manager OR q.scope = ANY(g.scopes)),
logged AS (
    INSERT INTO audit_log
        (actor_kind, actor_id, profile_id, device_id, action, client_addr, user_agent)
    SELECT 'user', ok.actor_id, g.profile_id, g.id, ok.action, ok.client_addr, ok.user_agent
    FROM ok JOIN g USING (n) ORDER BY ok.n
),
r AS (
    SELECT ok.n, x.* FROM ok CROSS JOIN LATERAL (
        (SELECT ts, value, rate_per_min, direction FROM readings
         WHERE ok.latest AND device_id = ok.device_id ORDER BY ts DESC LIMIT 1)
        UNION ALL
        (SELECT ts, value, rate_per_min, direction FROM readings
         WHERE NOT ok.latest AND device_id = ok.device_id
           AND ts >= coalesce(ok.since, '-infinity') AND ts < coalesce(ok.until, 'infinity')
         ORDER BY ts LIMIT ok.lim)
    ) x
)
SELECT g.*, 0 AS part, NULL::timestamptz AS ts, NULL::float8 AS value,
       NULL::real AS rate_per_min, NULL::text AS direction FROM g
UNION ALL
SELECT r.n, {nulls}, 1, r.ts, r.value, r.rate_per_min, r.direction FROM r
ORDER BY n, part, ts
"""
_DEVICE_NULLS = (
    "NULL::uuid, NULL::text, NULL::text, NULL::text, NULL::integer, NULL::timestamptz,"
    " NULL::uuid, NULL::boolean, NULL::text[]"
)
_AUDITED_READS_SQL = _AUDITED_READS.format(
    relation=device_relation("q.actor_id"), nulls=_DEVICE_NULLS
)
# A user agent is kept to its first 300 characters in the audit log.
_USER_AGENT_CHARS = 300


async def audited_reads(pool: asyncpg.Pool, reads: list[ReadRequest]) -> list[AuditedRead]:
    """Each read's device, grant and readings (``AuditedRead``), in ``reads``' order, from one
    statement; a read whose grant does not allow its scope has no readings."""
    if not reads:
        return []
    columns: list[list[Any]] = [[] for _ in range(10)]
    for read in reads:
        audit = read.audit
        values = (
            read.device_id,
            audit.actor_id,
            read.scope,
            audit.action,
            audit.client_addr,
            (audit.user_agent or "")[:_USER_AGENT_CHARS] or None,
            read.latest,
            read.start,
            read.end,
            read.limit,
        )
        for column, value in zip(columns, values, strict=True):
            column.append(value)
    rows = await pool.fetch(_AUDITED_READS_SQL, *columns)
    answers = [AuditedRead(None, None, []) for _ in reads]
    for row in rows:
        i = row["n"] - 1
        if row["part"] == 0:
            answers[i] = AuditedRead(row, grant_of(row), [])
        else:
            answers[i].rows.append(row)
    return answers


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
