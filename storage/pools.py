"""Connections: asyncpg pools for the API's reads, psycopg connections for the writers."""

from __future__ import annotations

import asyncpg
import psycopg

# A new connection that is not made within this long fails (asyncpg's default is 60 s,
# libpq's none): a server whose host stopped answering (a failover, a network cut) must
# turn into a 503 or a retry within seconds, not a request or a commit hung for a minute.
# Passed as an argument, never in the URL (asyncpg sends unknown URL options to the server).
CONNECT_TIMEOUT_S = 5


async def open_pool(
    url: str,
    *,
    min_size: int = 1,
    max_size: int = 10,
    server_settings: dict[str, str] | None = None,
) -> asyncpg.Pool:
    return await asyncpg.create_pool(
        url,
        min_size=min_size,
        max_size=max_size,
        command_timeout=30,
        timeout=CONNECT_TIMEOUT_S,
        reset=_no_session_state,
        server_settings=server_settings,
    )


async def _no_session_state(conn: asyncpg.Connection) -> None:
    """What a connection handed back to the pool needs beyond what asyncpg always does
    (roll back a transaction left open, drop its listeners): nothing.

    asyncpg's default also sends a reset query (advisory unlock, ``CLOSE ALL``, ``UNLISTEN
    *``, ``RESET ALL``): one more round trip on every release, as much as a small read
    costs, for session state Vigil never leaves on pooled connections: no ``SET`` outside a
    transaction, no ``LISTEN`` (the live hub has its own connection), advisory locks only
    for the transaction, no ``WITH HOLD`` cursors (tests/storage/test_pools.py holds it)."""


async def open_writer_connection(url: str) -> psycopg.AsyncConnection:
    """An autocommit connection: every ``conn.transaction()`` is a real BEGIN/COMMIT."""
    return await psycopg.AsyncConnection.connect(
        url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S
    )


async def answers(pool: asyncpg.Pool, timeout_s: float) -> bool:
    """Whether the database answers a trivial query within ``timeout_s`` (readiness)."""
    try:
        return bool(await pool.fetchval("SELECT true", timeout=timeout_s))
    except Exception:  # any failure (refused, timed out, pool closed) is "not ready"
        return False
