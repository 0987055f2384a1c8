"""A synchronous streaming standby: every committed row survives the primary's sudden death.

Real PostgreSQL servers: a primary that waits for its standby on every commit, the standby
cloned with `pg_basebackup -R`, the primary killed with SIGKILL, the standby promoted, and
a client URL listing both servers that finds the new primary by itself.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from storage.embedded import EmbeddedPostgres, free_port
from storage.standby import (
    STANDBY_NAME,
    clone_standby,
    replication_lag_seconds,
    synchronous_settings,
)


@pytest.fixture
def base() -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="vigil-standby-"))
    path.chmod(0o755)  # the unprivileged server user must reach it when we are root
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def both_hosts_url(primary: EmbeddedPostgres, standby: EmbeddedPostgres) -> str:
    """The URL an application lists both servers in: it connects to whichever takes writes."""
    user_password = primary.url().split("//", 1)[1].split("@", 1)[0]
    return (
        f"postgresql://{user_password}@127.0.0.1:{primary.port},127.0.0.1:{standby.port}"
        f"/{primary.dbname}?target_session_attrs=read-write&connect_timeout=5"
    )


def wait_for(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def sync_standbys(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(
            "SELECT application_name, sync_state FROM pg_stat_replication"
        ).fetchall()


@pytest.mark.slow
def test_acknowledged_rows_survive_the_primary_killed_and_the_standby_promoted(base) -> None:
    primary = EmbeddedPostgres(
        base / "primary", port=free_port(), durable=False, extra_settings=synchronous_settings()
    )
    standby = EmbeddedPostgres(base / "standby", port=free_port(), durable=False)
    primary.start()
    try:
        assert replication_lag_seconds(primary.url()) is None  # no standby yet
        clone_standby(primary, standby)
        standby.start()
        wait_for(
            lambda: sync_standbys(primary.url()) == [(STANDBY_NAME, "sync")], 60, "sync standby"
        )
        with psycopg.connect(primary.url(), autocommit=True) as conn:
            conn.execute("CREATE TABLE acked (n int PRIMARY KEY)")
        url = both_hosts_url(primary, standby)
        acknowledged = []
        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.info.port == primary.port
            for n in range(300):  # one commit each: each returns only once the standby has it
                conn.execute("INSERT INTO acked VALUES (%s)", (n,))
                acknowledged.append(n)
        lag = replication_lag_seconds(primary.url())
        assert lag is not None and 0 <= lag < 5

        pid = primary.status().pid
        assert pid is not None
        os.kill(pid, signal.SIGKILL)  # no shutdown checkpoint, no goodbye to the standby
        wait_for(lambda: not primary.status().running, 30, "the primary to die")
        standby.promote()

        with psycopg.connect(url, autocommit=True) as conn:
            assert conn.info.port == standby.port  # found the new primary by itself
            stored = [r[0] for r in conn.execute("SELECT n FROM acked ORDER BY n")]
            conn.execute("INSERT INTO acked VALUES (-1)")  # and it takes writes
        assert stored == acknowledged
    finally:
        standby.stop()
        primary.stop()


def test_a_second_clone_into_an_existing_standby_is_refused(base) -> None:
    primary = EmbeddedPostgres(base / "primary", port=free_port(), durable=False)
    standby = EmbeddedPostgres(base / "standby", port=free_port(), durable=False)
    primary.start()
    try:
        clone_standby(primary, standby)
        marker = standby.pgdata / "PG_VERSION"
        before = marker.stat().st_mtime_ns
        with pytest.raises(FileExistsError, match="remove it"):
            clone_standby(primary, standby)
        assert marker.stat().st_mtime_ns == before
    finally:
        primary.stop()
