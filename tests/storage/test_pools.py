"""The API's pools on a real PostgreSQL: the readiness probe's check answers, then not; a
connection goes back without asyncpg's reset query (one round trip per request saved) and
without leaking what asyncpg must still clean: an open transaction."""

from __future__ import annotations

import re
from pathlib import Path

from storage.pools import answers, open_pool

ROOT = Path(__file__).resolve().parents[2]
# Statements that leave state in the session (past the transaction) of a pooled connection.
SESSION_STATE = re.compile(
    r"pg_advisory_lock(_shared)?\(|set_config\([^)]*false|CURSOR\s+WITH\s+HOLD"
    r"|execute\(\s*f?[\"']\s*(SET\s+(?!LOCAL\b)|LISTEN\s)",
    re.IGNORECASE,
)
# psycopg connections of their own (not the pool), each unlocking before it closes:
# migrations, and the one-placement-change-at-a-time lock of shard scaling and rebalancing.
NOT_POOLED = {"storage/migrate.py", "storage/shard_layouts.py"}


async def test_a_released_connection_sends_no_reset_query(database_url: str) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=1)
    sent: list[str] = []
    try:
        async with pool.acquire() as conn:
            conn.add_query_logger(lambda record: sent.append(record.query))
            assert await conn.fetchval("SELECT 41 + 1") == 42
        async with pool.acquire() as again:  # the same (only) connection
            assert await again.fetchval("SELECT 2") == 2
    finally:
        await pool.close()
    assert sent == ["SELECT 41 + 1", "SELECT 2"]


async def test_a_transaction_left_open_is_still_rolled_back(database_url: str) -> None:
    pool = await open_pool(database_url, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            await conn.execute("BEGIN")
            await conn.execute("CREATE TEMP TABLE left_open (x int)")
        async with pool.acquire() as again:
            assert not again.is_in_transaction()
            gone = await again.fetchval("SELECT to_regclass('pg_temp.left_open') IS NULL")
            assert gone
    finally:
        await pool.close()


def test_no_code_leaves_session_state_on_a_pooled_connection() -> None:
    found = [
        f"{path.relative_to(ROOT)}: {match.group(0)}"
        for folder in ("storage", "api", "actors", "cluster")
        for path in sorted((ROOT / folder).rglob("*.py"))
        if str(path.relative_to(ROOT)) not in NOT_POOLED
        for match in SESSION_STATE.finditer(path.read_text())
    ]
    assert found == [], "the pool no longer resets sessions (storage/pools.py)"


async def test_answers_while_the_pool_can_query_and_not_once_it_is_closed(
    database_url: str,
) -> None:
    pool = await open_pool(database_url, max_size=1)
    try:
        assert await answers(pool, timeout_s=5) is True
    finally:
        await pool.close()
    assert await answers(pool, timeout_s=5) is False
