"""storage/history's aggregate queries against real PostgreSQL, compared with the same
aggregates computed by numpy from the readings the test wrote.

The rollup case gives a database a ``readings_5m`` view of the continuous aggregate's shape
(on TimescaleDB the migration's own continuous aggregate is used), so the rollup path is
exercised on plain PostgreSQL too: the window's edges are not on a 5-minute boundary, and a
rollup bucket that straddles an edge must not count readings outside the window.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import numpy as np
import psycopg
import pytest

from storage import history

T0 = datetime(2026, 3, 2, tzinfo=UTC)  # a Monday, on every bucket boundary
STEP_S = 37  # not a divisor of any bucket, so buckets hold uneven counts


def _seed(url: str, n: int = 400) -> tuple[uuid.UUID, uuid.UUID, np.ndarray, np.ndarray]:
    """A user, profile and glucose device with ``n`` readings every 37 s from T0."""
    rng = np.random.default_rng(11)
    ts = T0.timestamp() + STEP_S * np.arange(n, dtype=np.float64)
    values = np.round(rng.uniform(60, 250, n), 1)
    with psycopg.connect(url, autocommit=True) as conn:
        (user,) = conn.execute(
            "INSERT INTO users (email, password_hash, name) VALUES (%s, 'x', 'H') RETURNING id",
            (f"{uuid.uuid4().hex}@example.org",),
        ).fetchone()
        (profile,) = conn.execute(
            "INSERT INTO profiles (manager_id, kind, name) VALUES (%s, 'self', 'H') RETURNING id",
            (user,),
        ).fetchone()
        (device,) = conn.execute(
            "INSERT INTO devices (profile_id, kind, serial, interval_s)"
            " VALUES (%s, 'glucose', %s, 60) RETURNING id",
            (profile, uuid.uuid4().hex),
        ).fetchone()
        stamps = [datetime.fromtimestamp(t, UTC) for t in ts]
        if _partitioned(conn):
            conn.execute("SELECT vigil_ensure_readings_partitions(%s, %s)", (stamps[0], stamps[-1]))
        with conn.cursor().copy("COPY readings (device_id, ts, value) FROM STDIN") as copy:
            for stamp, value in zip(stamps, values, strict=True):
                copy.write_row((device, stamp, float(value)))
    return profile, device, ts, values


def _partitioned(conn: psycopg.Connection) -> bool:
    """Plain PostgreSQL's readings need their weekly partitions made before a COPY."""
    row = conn.execute("SELECT to_regproc('vigil_ensure_readings_partitions') IS NOT NULL")
    return bool(row.fetchone()[0])


def _expected(ts: np.ndarray, values: np.ndarray, start: datetime, end: datetime, bucket_s: int):
    inside = (ts >= start.timestamp()) & (ts < end.timestamp())
    t, v = ts[inside], values[inside]
    keys = np.floor(t / bucket_s) * bucket_s
    starts = np.unique(keys)
    groups = [v[keys == k] for k in starts]
    return (
        starts,
        np.array([g.min() for g in groups]),
        np.array([g.mean() for g in groups]),
        np.array([g.max() for g in groups]),
        np.array([len(g) for g in groups]),
    )


def _bucketed(url: str, device: uuid.UUID, start: datetime, end: datetime, bucket_s: int):
    async def main() -> list[history.Buckets]:
        async with asyncpg.create_pool(url, min_size=1, max_size=2) as pool:
            history._rollups_present.pop(id(pool), None)
            return await history.bucketed(pool, [device], start, end, bucket_s)

    (result,) = asyncio.run(main())
    return result


def _assert_equal(got: history.Buckets, want) -> None:
    starts, lo, mean, hi, count = want
    np.testing.assert_array_equal(got.start, starts)
    np.testing.assert_array_equal(got.min, lo)
    np.testing.assert_allclose(got.mean, mean, rtol=1e-12)
    np.testing.assert_array_equal(got.max, hi)
    np.testing.assert_array_equal(got.count, count)


WINDOWS = [
    pytest.param(0, 2 * 3600 + 130, 900, id="end-inside-a-5min-bucket"),
    pytest.param(100, 3 * 3600 + 299, 300, id="both-edges-inside-5min-buckets"),
    pytest.param(0, 3600, 3600, id="whole-buckets"),
    pytest.param(60, 240, 300, id="inside-one-bucket"),
]


@pytest.fixture(scope="module")
def plain(database_url: str):
    return database_url, *_seed(database_url)


@pytest.fixture(scope="module")
def rolled(pg):
    """A database of its own whose readings_5m rollup exists (a view of the continuous
    aggregate's shape on plain PostgreSQL; the real one on TimescaleDB)."""
    from storage.migrate import migrate

    name = f"rollup_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg.url(), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = pg.url().rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    with psycopg.connect(url, autocommit=True) as conn:
        if not conn.execute("SELECT to_regclass('readings_5m') IS NOT NULL").fetchone()[0]:
            conn.execute(
                "CREATE VIEW readings_5m AS SELECT device_id,"
                " date_bin('5 minutes', ts, timestamptz 'epoch') AS bucket,"
                " min(value) AS min_value, max(value) AS max_value,"
                " sum(value) AS sum_value, count(*) AS n FROM readings GROUP BY 1, 2"
            )
    return url, *_seed(url)


@pytest.mark.parametrize(("from_s", "to_s", "bucket_s"), WINDOWS)
def test_buckets_equal_the_raw_readings(plain, from_s: int, to_s: int, bucket_s: int) -> None:
    url, _, device, ts, values = plain
    start, end = T0 + timedelta(seconds=from_s), T0 + timedelta(seconds=to_s)
    _assert_equal(
        _bucketed(url, device, start, end, bucket_s),
        _expected(ts, values, start, end, bucket_s),
    )


@pytest.mark.parametrize(("from_s", "to_s", "bucket_s"), WINDOWS)
def test_rollup_buckets_count_no_reading_outside_the_window(
    rolled, from_s: int, to_s: int, bucket_s: int
) -> None:
    url, _, device, ts, values = rolled
    start, end = T0 + timedelta(seconds=from_s), T0 + timedelta(seconds=to_s)
    _assert_equal(
        _bucketed(url, device, start, end, bucket_s),
        _expected(ts, values, start, end, bucket_s),
    )


def test_the_rollup_path_is_the_one_taken(rolled) -> None:
    url = rolled[0]

    async def main() -> frozenset[int]:
        async with asyncpg.create_pool(url, min_size=1, max_size=1) as pool:
            history._rollups_present.pop(id(pool), None)
            return await history._available_rollups(pool)

    assert 300 in asyncio.run(main())


def test_rollup_span_rounds_inward() -> None:
    start, end = T0 + timedelta(seconds=100), T0 + timedelta(seconds=3 * 3600 + 299)
    assert history.rollup_span(start, end, 300) == (
        T0 + timedelta(seconds=300),
        T0 + timedelta(seconds=3 * 3600),
    )
    assert history.rollup_span(T0, T0 + timedelta(hours=1), 3600) == (T0, T0 + timedelta(hours=1))


def test_series_is_the_window_in_time_order(plain) -> None:
    url, _, device, ts, values = plain
    start, end = T0 + timedelta(seconds=500), T0 + timedelta(seconds=4000)

    async def main() -> tuple[np.ndarray, np.ndarray]:
        async with asyncpg.create_pool(url, min_size=1, max_size=1) as pool:
            return await history.series(pool, [device], start, end)

    got_t, got_v = asyncio.run(main())
    inside = (ts >= start.timestamp()) & (ts < end.timestamp())
    np.testing.assert_array_equal(got_t, ts[inside])
    np.testing.assert_array_equal(got_v, values[inside])


def test_bulk_series_reads_each_profile_with_one_copy(plain) -> None:
    url, profile, _, ts, values = plain
    other = uuid.uuid4()  # no such profile: comes back empty
    start, end = T0 + timedelta(seconds=1000), T0 + timedelta(seconds=9000)
    with psycopg.connect(url) as conn:
        got = history.bulk_series(conn, [other, profile], "glucose", start, end)
        none = history.bulk_series(conn, [profile], "temperature", start, end)
    inside = (ts >= start.timestamp()) & (ts < end.timestamp())
    np.testing.assert_allclose(got[profile][0], ts[inside], rtol=0, atol=1e-6)
    np.testing.assert_array_equal(got[profile][1], values[inside])
    assert got[other][0].size == 0 and none[profile][0].size == 0


def test_list_profiles_gives_the_shortest_interval_per_kind(plain) -> None:
    url, profile, *_ = plain
    with psycopg.connect(url) as conn:
        (info,) = history.list_profiles(conn, [profile])
    assert (info.id, info.glucose_interval_s, info.temperature_interval_s) == (profile, 60, None)
