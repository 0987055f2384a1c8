"""Connections: asyncpg pools for the API's reads, psycopg connections for the writers."""

from __future__ import annotations

import asyncpg
import psycopg


async def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    return await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, command_timeout=30)


async def open_writer_connection(url: str) -> psycopg.AsyncConnection:
    """An autocommit connection: every ``conn.transaction()`` is a real BEGIN/COMMIT."""
    return await psycopg.AsyncConnection.connect(url, autocommit=True)


async def answers(pool: asyncpg.Pool, timeout_s: float) -> bool:
    """Whether the database answers a trivial query within ``timeout_s`` (readiness)."""
    try:
        return bool(await pool.fetchval("SELECT true", timeout=timeout_s))
    except Exception:  # any failure (refused, timed out, pool closed) is "not ready"
        return False
