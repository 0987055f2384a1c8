"""Failed logins and temporary lockouts, per key (an account's email or a client address).

Kept in PostgreSQL so that every API replica sees the same counts."""

from __future__ import annotations

from datetime import datetime

import asyncpg


async def locked_until(pool: asyncpg.Pool, keys: list[str]) -> datetime | None:
    """The latest end of an active lockout among ``keys``; None when none is locked."""
    return await pool.fetchval(
        "SELECT max(locked_until) FROM login_lockouts"
        " WHERE key = ANY ($1) AND locked_until > now()",
        keys,
    )


async def record_failure(
    pool: asyncpg.Pool, key: str, max_failures: int, window_s: int, lockout_s: int
) -> datetime | None:
    """Count a failure of ``key``; when it reaches ``max_failures`` within the window, lock
    the key for ``lockout_s`` (its failures start again from zero) and return the end."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", key)
        await conn.execute(
            "DELETE FROM login_failures WHERE key = $1 AND at < now() - make_interval(secs => $2)",
            key,
            window_s,
        )
        await conn.execute("INSERT INTO login_failures (key) VALUES ($1)", key)
        count = await conn.fetchval("SELECT count(*) FROM login_failures WHERE key = $1", key)
        if count < max_failures:
            return None
        await conn.execute("DELETE FROM login_failures WHERE key = $1", key)
        return await conn.fetchval(
            "INSERT INTO login_lockouts (key, locked_until)"
            " VALUES ($1, now() + make_interval(secs => $2))"
            " ON CONFLICT (key) DO UPDATE SET locked_until = excluded.locked_until"
            " RETURNING locked_until",
            key,
            lockout_s,
        )


async def clear(pool: asyncpg.Pool, key: str) -> None:
    """Forget the failures and any lockout of ``key`` (a successful login, a reset)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("DELETE FROM login_failures WHERE key = $1", key)
        await conn.execute("DELETE FROM login_lockouts WHERE key = $1", key)
