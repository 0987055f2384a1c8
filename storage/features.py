"""Which optional PostgreSQL features this server offers."""

from __future__ import annotations

import psycopg


def timescale_available(conn: psycopg.Connection) -> bool:
    """True when the TimescaleDB extension is installed, or can be created, in this database."""
    row = conn.execute(
        "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb')"
    ).fetchone()
    if not row or not row[0]:
        return False
    try:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS timescaledb")
    except psycopg.Error:
        # Listed but not loadable (e.g. missing from shared_preload_libraries).
        return False
    return True
