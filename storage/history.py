"""Reading history for charts, statistics and reports: a profile's devices, time-bucketed
aggregates (``date_bin`` on the readings, or the TimescaleDB continuous aggregates when they
exist), raw series as arrays, and a bulk loader for batch jobs (binary COPY)."""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

import asyncpg
import numpy as np
import psycopg

# Continuous aggregates created by 0042_readings_rollups.timescale.sql, by bucket seconds.
ROLLUPS = {3600: "readings_1h", 300: "readings_5m"}
_rollups_present: dict[int, frozenset[int]] = {}


@dataclass(frozen=True, slots=True)
class Buckets:
    """Per-device aggregates of the readings in consecutive buckets (empty buckets absent)."""

    device_id: UUID
    start: np.ndarray  # bucket start, seconds since the epoch (float64)
    min: np.ndarray
    mean: np.ndarray
    max: np.ndarray
    count: np.ndarray  # int64


async def profile_devices(pool: asyncpg.Pool, profile_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, kind, serial, model, interval_s FROM devices WHERE profile_id = $1"
        " ORDER BY created_at, id",
        profile_id,
    )


async def _available_rollups(pool: asyncpg.Pool) -> frozenset[int]:
    key = id(pool)
    if key not in _rollups_present:
        present = set()
        for seconds, name in ROLLUPS.items():
            if await pool.fetchval("SELECT to_regclass($1) IS NOT NULL", name):
                present.add(seconds)
        _rollups_present[key] = frozenset(present)
    return _rollups_present[key]


def _rollup_for(available: frozenset[int], bucket_s: int) -> tuple[str, int] | None:
    """The coarsest rollup (view name, bucket seconds) whose buckets tile ``bucket_s``."""
    for seconds in sorted(available, reverse=True):
        if bucket_s % seconds == 0:
            return ROLLUPS[seconds], seconds
    return None


def rollup_span(start: datetime, end: datetime, seconds: int) -> tuple[datetime, datetime]:
    """The whole rollup buckets inside ``[start, end)``: from ``start`` rounded up to ``end``
    rounded down to a multiple of ``seconds`` (epoch-aligned). Readings outside the span
    (the partial buckets at either edge) are read raw, so no bucket counts a reading from
    outside the window. An empty span has its start at or after its end."""
    first = math.ceil(start.timestamp() / seconds) * seconds
    last = math.floor(end.timestamp() / seconds) * seconds
    return datetime.fromtimestamp(first, UTC), datetime.fromtimestamp(last, UTC)


_RAW_BUCKETS = (
    "SELECT device_id, extract(epoch FROM date_bin($4::interval, ts,"
    " timestamptz 'epoch'))::float8 AS b, min(value), avg(value), max(value), count(*)"
    " FROM readings WHERE device_id = ANY ($1::uuid[]) AND ts >= $2 AND ts < $3"
    " GROUP BY 1, 2 ORDER BY 1, 2"
)


def _rollup_buckets(rollup: str) -> str:
    # Whole rollup buckets in [$5, $6) plus the raw readings of [$2, $3) outside that span.
    return (
        "SELECT device_id, extract(epoch FROM date_bin($4::interval, b,"
        " timestamptz 'epoch'))::float8, min(lo), sum(total) / sum(n), max(hi), sum(n)::bigint"
        f" FROM (SELECT device_id, bucket AS b, min_value AS lo, max_value AS hi,"
        f" sum_value AS total, n FROM {rollup}"
        " WHERE device_id = ANY ($1::uuid[]) AND bucket >= $5 AND bucket < $6"
        " UNION ALL SELECT device_id, ts, value, value, value, 1::bigint FROM readings"
        " WHERE device_id = ANY ($1::uuid[]) AND ts >= $2 AND ts < $3"
        " AND (ts < $5 OR ts >= $6)) AS part GROUP BY 1, 2 ORDER BY 1, 2"
    )


async def bucketed(
    pool: asyncpg.Pool, device_ids: list[UUID], start: datetime, end: datetime, bucket_s: int
) -> list[Buckets]:
    """min/mean/max/count per device and ``bucket_s`` bucket (aligned to the Unix epoch) of
    the readings in ``[start, end)``. ``start`` should be on a bucket boundary. Rollups
    serve only their whole buckets inside the window; the edges are read raw."""
    args: list = [device_ids, start, end, timedelta(seconds=bucket_s)]
    sql = _RAW_BUCKETS
    chosen = _rollup_for(await _available_rollups(pool), bucket_s)
    if chosen is not None:
        span = rollup_span(start, end, chosen[1])
        if span[0] < span[1]:
            sql = _rollup_buckets(chosen[0])
            args += span
    rows = await pool.fetch(sql, *args)
    out: dict[UUID, list] = {d: [] for d in device_ids}
    for r in rows:
        out[r[0]].append(tuple(r)[1:])
    result = []
    for device_id in device_ids:
        cols = list(zip(*out[device_id], strict=True)) or [(), (), (), (), ()]
        result.append(
            Buckets(
                device_id,
                np.asarray(cols[0], dtype=np.float64),
                np.asarray(cols[1], dtype=np.float64),
                np.asarray(cols[2], dtype=np.float64),
                np.asarray(cols[3], dtype=np.float64),
                np.asarray(cols[4], dtype=np.int64),
            )
        )
    return result


async def series(
    pool: asyncpg.Pool, device_ids: list[UUID], start: datetime, end: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps (seconds since the epoch) and values of the devices' readings in
    ``[start, end)``, in time order."""
    if not device_ids:
        return np.empty(0), np.empty(0)
    row = await pool.fetchrow(
        "SELECT array_agg(extract(epoch FROM ts)::float8 ORDER BY ts),"
        " array_agg(value ORDER BY ts) FROM readings"
        " WHERE device_id = ANY ($1::uuid[]) AND ts >= $2 AND ts < $3",
        device_ids,
        start,
        end,
    )
    if row is None or row[0] is None:
        return np.empty(0), np.empty(0)
    return np.asarray(row[0], dtype=np.float64), np.asarray(row[1], dtype=np.float64)


# -- batch jobs (psycopg, sync) ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    id: UUID
    name: str
    timezone: str
    glucose_interval_s: int | None
    temperature_interval_s: int | None


def list_profiles(conn: psycopg.Connection, only: list[UUID] | None = None) -> list[ProfileInfo]:
    """Profiles (all, or ``only``) with the shortest interval of their devices per kind."""
    cur = conn.execute(
        "SELECT p.id, p.name, p.timezone,"
        " min(d.interval_s) FILTER (WHERE d.kind = 'glucose'),"
        " min(d.interval_s) FILTER (WHERE d.kind = 'temperature')"
        " FROM profiles p LEFT JOIN devices d ON d.profile_id = p.id"
        " WHERE %(only)s::uuid[] IS NULL OR p.id = ANY (%(only)s::uuid[])"
        " GROUP BY p.id ORDER BY p.id",
        {"only": only},
    )
    return [ProfileInfo(*row) for row in cur.fetchall()]


_COPY_HEADER = 19  # signature (11) + flags (4) + header extension length (4)
_ROW = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("p", ">i4"), ("l2", ">i4"), ("t", ">i8"),
                 ("l3", ">i4"), ("v", ">f8")])  # fmt: skip


def bulk_series(
    conn: psycopg.Connection,
    profile_ids: list[UUID],
    kind: str,
    start: datetime,
    end: datetime,
) -> dict[UUID, tuple[np.ndarray, np.ndarray]]:
    """Each profile's readings of ``kind`` devices in ``[start, end)`` as (seconds, values),
    in time order, read with one binary COPY (no per-row Python objects)."""
    buf = bytearray()
    query = (
        "COPY (SELECT (array_position(%(ids)s::uuid[], d.profile_id) - 1)::int4,"
        " (extract(epoch FROM r.ts) * 1000000)::int8, r.value"
        " FROM readings r JOIN devices d ON d.id = r.device_id"
        " WHERE d.profile_id = ANY (%(ids)s::uuid[]) AND d.kind = %(kind)s"
        " AND r.ts >= %(start)s AND r.ts < %(end)s ORDER BY 1, 2) TO STDOUT (FORMAT binary)"
    )
    with (
        conn.cursor() as cur,
        cur.copy(query, {"ids": profile_ids, "kind": kind, "start": start, "end": end}) as copy,
    ):
        for block in copy:
            buf += block
    out = {p: (np.empty(0), np.empty(0)) for p in profile_ids}
    if len(buf) <= _COPY_HEADER + 2:
        return out
    (ext,) = struct.unpack(">i", bytes(buf[15:19]))
    body = memoryview(buf)[_COPY_HEADER + ext : len(buf) - 2]
    rows = np.frombuffer(body, dtype=_ROW)
    idx = rows["p"].astype(np.int64)
    ts = rows["t"].astype(np.float64) / 1e6
    values = rows["v"].astype(np.float64)
    bounds = np.searchsorted(idx, np.arange(len(profile_ids) + 1))
    for i, pid in enumerate(profile_ids):
        lo, hi = bounds[i], bounds[i + 1]
        if hi > lo:
            out[pid] = (ts[lo:hi], values[lo:hi])
    return out
