"""Reading history for charts, statistics and reports: a profile's devices, time-bucketed
aggregates (``date_bin`` on the readings, or the TimescaleDB continuous aggregates when they
exist), raw series as arrays, and a bulk loader for batch jobs (binary COPY)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import datetime, timedelta
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


async def bucketed(
    pool: asyncpg.Pool, device_ids: list[UUID], start: datetime, end: datetime, bucket_s: int
) -> list[Buckets]:
    """min/mean/max/count per device and ``bucket_s`` bucket (aligned to the Unix epoch) of
    the readings in ``[start, end)``. ``start`` should be on a bucket boundary."""
    rollup = None
    for seconds in sorted(await _available_rollups(pool), reverse=True):
        if bucket_s % seconds == 0:
            rollup = ROLLUPS[seconds]
            break
    if rollup is None:
        sql = (
            "SELECT device_id, extract(epoch FROM date_bin($4::interval, ts,"
            " timestamptz 'epoch'))::float8 AS b, min(value), avg(value), max(value), count(*)"
            " FROM readings WHERE device_id = ANY ($1::uuid[]) AND ts >= $2 AND ts < $3"
            " GROUP BY 1, 2 ORDER BY 1, 2"
        )
    else:
        sql = (
            "SELECT device_id, extract(epoch FROM date_bin($4::interval, bucket,"
            " timestamptz 'epoch'))::float8 AS b, min(min_value),"
            " sum(sum_value) / sum(n), max(max_value), sum(n)::bigint"
            f" FROM {rollup} WHERE device_id = ANY ($1::uuid[]) AND bucket >= $2"
            " AND bucket < $3 GROUP BY 1, 2 ORDER BY 1, 2"
        )
    rows = await pool.fetch(sql, device_ids, start, end, timedelta(seconds=bucket_s))
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
