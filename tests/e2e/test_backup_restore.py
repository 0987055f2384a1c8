"""The restore drill: ingest, back up, ingest more, note a time T, ingest more, restore to T.

Runs its own `vigil up` with WAL archiving to an encrypted directory target, and drives it
with the operator's commands (`vigil db backup`, `vigil db restore --to`). The restored
database must hold exactly what was acknowledged before T: readings, accounts, shares and
alerts, nothing later and nothing lost.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest

from storage.wal_archive import generate_key
from tests.helpers import Account, minutes_ago, self_profile, series, share_directly, sign_up
from tests.ops_stack import VigilProcess, vigil_process

FALL = [130 - 3.5 * i for i in range(24)]  # every 30 s, 7 mg/dL/min down to 49.5: fires alerts

SNAPSHOT = {
    "readings": "SELECT device_id::text, ts FROM readings",
    "users": "SELECT id::text FROM users",
    "shares": "SELECT id::text FROM shares",
    "alerts": "SELECT id::text FROM alerts",
    "devices": "SELECT id::text FROM devices",
}


def snapshot(conn: psycopg.Connection) -> dict[str, set]:
    return {table: set(conn.execute(sql).fetchall()) for table, sql in SNAPSHOT.items()}


def ingest(account: Account, start: datetime, count: int) -> None:
    device = account.device("glucose")
    r = account.upload(device["id"], series(start, count, 300, 120.0, 0.1))
    assert r.status_code == 200 and r.json()["accepted"] == count, r.text


def fall(account: Account) -> None:
    """Readings one batch at a time that fire low alerts (acknowledged on return)."""
    device = account.device("glucose")
    start = minutes_ago(30)
    for i, value in enumerate(FALL):
        ts = (start + timedelta(seconds=30 * i)).isoformat()
        assert account.upload(device["id"], [{"ts": ts, "value": value}]).status_code == 200


def archive_everything(stack: VigilProcess) -> None:
    """Close the current WAL segment and wait until the archiver has stored it."""
    with stack.connect() as conn:
        segment = conn.execute("SELECT pg_walfile_name(pg_switch_wal())").fetchone()[0]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = conn.execute("SELECT last_archived_wal FROM pg_stat_archiver").fetchone()[0]
            if done is not None and done >= segment:
                return
            time.sleep(0.5)
    raise AssertionError(f"WAL segment {segment} was not archived within 60 s")


@pytest.mark.slow
@pytest.mark.isolated  # its own `vigil up` stack, without the session's beside it
def test_restore_to_a_time_holds_exactly_what_was_acknowledged_before_it() -> None:
    settings = {"backup_target": "archive", "backup_encryption_key": generate_key()}
    with vigil_process(**settings) as stack, httpx.Client(base_url=stack.url, timeout=60) as c:
        owner = sign_up(c)
        ingest(owner, minutes_ago(300), 20)
        backup = stack.vigil("db", "backup")
        assert backup.returncode == 0, backup.stderr + backup.stdout

        # After the backup, before T: only the archived WAL holds these.
        ingest(owner, minutes_ago(200), 15)
        follower = sign_up(c)
        with stack.connect() as conn:
            share_directly(conn, self_profile(owner), owner.email, follower.email, ["readings"])
        fall(owner)
        with stack.connect() as conn:
            at_t = snapshot(conn)
        time.sleep(0.05)
        to_time = datetime.now(UTC)
        time.sleep(0.05)

        # After T: none of this may survive the restore.
        ingest(owner, minutes_ago(100), 10)
        late = sign_up(c)
        with stack.connect() as conn:
            share_directly(conn, self_profile(late), late.email, follower.email, ["readings"])
        fall(late)
        with stack.connect() as conn:
            before_restore = snapshot(conn)
            assert conn.execute("SELECT count(*) FROM backups WHERE succeeded").fetchone() == (1,)
        archive_everything(stack)
        stack.stop()

        restored = stack.vigil("db", "restore", "--to", to_time.isoformat())
        assert restored.returncode == 0, restored.stderr + restored.stdout
        with stack.connect() as conn:
            after = snapshot(conn)
            assert conn.execute("SELECT pg_is_in_recovery()").fetchone() == (False,)
            conn.execute("CREATE TABLE written_after_restore (x int)")  # it takes writes

    assert len(at_t["readings"]) == 20 + 15 + len(FALL)
    assert at_t["alerts"] and len(at_t["shares"]) == 1 and len(at_t["users"]) == 2
    for table in SNAPSHOT:  # the later writes were there, so the comparison can fail
        assert before_restore[table] > at_t[table], table
        assert after[table] == at_t[table], table
