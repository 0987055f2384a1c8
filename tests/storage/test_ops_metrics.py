"""The database facts behind the replication and backup gauges, on a real PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import psycopg

from storage import ops_metrics
from storage.pools import open_pool


async def test_no_standby_means_zero_lag_and_no_backup_recorded_means_unknown(
    fresh_database_url: str,
) -> None:
    pool = await open_pool(fresh_database_url, max_size=2)
    try:
        assert await ops_metrics.replication(pool) == (0, 0.0)
        assert await ops_metrics.last_backup_s(pool) is None
    finally:
        await pool.close()


async def test_the_last_successful_backup_is_reported(fresh_database_url: str) -> None:
    # The table `vigil db backup` writes (its migration; docs/operations.md, "Backups").
    with psycopg.connect(fresh_database_url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO backups (label, target, started_at, finished_at, succeeded) VALUES"
            " ('a', 't', '2026-11-29 01:00+00', '2026-11-29 02:00+00', true),"
            " ('b', 't', '2026-11-30 01:00+00', '2026-11-30 02:00+00', false),"
            " ('c', 't', '2026-11-28 01:00+00', '2026-11-28 02:00+00', true)"
        )
    pool = await open_pool(fresh_database_url, max_size=2)
    try:
        assert (
            await ops_metrics.last_backup_s(pool)
            == datetime(2026, 11, 29, 2, tzinfo=UTC).timestamp()
        )
    finally:
        await pool.close()
