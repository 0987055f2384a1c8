"""A streaming standby of the embedded PostgreSQL, synchronous commit, and replication lag.

The standby is a second cluster cloned with ``pg_basebackup -R``: it streams the primary's
WAL continuously and can be promoted to primary when the primary is lost. With
:func:`synchronous_settings` on the primary, a commit (and so an acknowledged reading)
returns only once the standby has flushed it, so it is on two machines; the price is that
commits wait while the standby is unreachable (ingest then answers 503).
"""

from __future__ import annotations

import shutil

import psycopg

from storage.embedded import EmbeddedPostgres

__all__ = [
    "STANDBY_NAME",
    "clone_standby",
    "in_recovery",
    "replication_lag_seconds",
    "synchronous_settings",
]

STANDBY_NAME = "vigil_standby"


def synchronous_settings(standby_name: str = STANDBY_NAME) -> dict[str, str]:
    """Primary settings that make every commit wait for the standby's flush."""
    return {"synchronous_standby_names": f"'{standby_name}'", "synchronous_commit": "on"}


def clone_standby(
    primary: EmbeddedPostgres, standby: EmbeddedPostgres, standby_name: str = STANDBY_NAME
) -> None:
    """Create ``standby`` as a streaming replica of the running ``primary`` (not started).

    The standby keeps the primary's user and password (it is a copy of the cluster).
    """
    if standby.pgdata.exists():
        raise FileExistsError(f"{standby.pgdata} exists; remove it to clone a new standby")
    standby.prepare_dirs()
    shutil.copy2(primary.password_file, standby.password_file)
    standby.prepare_dirs()  # owns the copied password file
    conninfo = f"{primary.url()}?application_name={standby_name}"
    standby.run_tool(
        "pg_basebackup",
        [
            "--dbname",
            conninfo,
            "--pgdata",
            str(standby.pgdata),
            "--wal-method",
            "stream",
            "--write-recovery-conf",
            "--checkpoint",
            "fast",
            "--no-password",
        ],
    )


def replication_lag_seconds(primary_url: str) -> float | None:
    """Replay lag of the slowest standby as the primary sees it; None without a standby."""
    with psycopg.connect(primary_url) as conn:
        row = conn.execute(
            "SELECT count(*), coalesce(max(extract(epoch FROM replay_lag)), 0)::float8"
            " FROM pg_stat_replication"
        ).fetchone()
    if row is None or row[0] == 0:
        return None
    return float(row[1])


def in_recovery(url: str, connect_timeout_s: int = 5) -> bool:
    """Whether the server at ``url`` is still a standby (replaying WAL), not yet writable;
    raises ``psycopg.OperationalError`` while it does not accept connections."""
    with psycopg.connect(url, connect_timeout=connect_timeout_s) as conn:
        row = conn.execute("SELECT pg_is_in_recovery()").fetchone()
    return row is None or bool(row[0])
