"""Database facts the operations metrics report: replication and backups.

Read on the primary: ``pg_stat_replication`` lists the standbys streaming from it with
their replay lag; the ``backups`` table (written by ``vigil db backup``) records each base
backup. Before that table exists (an older schema) the last backup is simply unknown.
"""

from __future__ import annotations

import asyncpg


async def replication(pool: asyncpg.Pool) -> tuple[int, float]:
    """(standbys streaming, replay lag in seconds of the slowest; 0 without standbys)."""
    row = await pool.fetchrow(
        "SELECT count(*) AS standbys,"
        " coalesce(max(extract(epoch FROM replay_lag)), 0)::float8 AS lag_s"
        " FROM pg_stat_replication"
    )
    assert row is not None
    return int(row["standbys"]), float(row["lag_s"])


async def last_backup_s(pool: asyncpg.Pool) -> float | None:
    """When the last successful base backup finished (unix seconds), if any is recorded."""
    try:
        return await pool.fetchval(
            "SELECT extract(epoch FROM max(finished_at))::float8 FROM backups WHERE succeeded"
        )
    except asyncpg.UndefinedTableError:
        return None
