"""Failure drills (issue 17 part 5): faults injected into a whole running Vigil under load.

One ``vigil up`` stack (its own PostgreSQL, Ray and Serve; ``tests/ops_stack.py``) is shared
by the drills of this module; each drill signs up its own account with new devices, so a
drill sees only its own readings and alerts. Under every fault the fleet
(``tests/chaos/fleet.py``) keeps uploading and re-sending what was refused; afterwards
each drill asserts: every acknowledged reading stored once, nothing doubled, one alert per
device that crossed the threshold, and recovery without a human within a stated bound.
"""

from __future__ import annotations

import os
import resource
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.chaos.fleet import Fleet, descendants, kill, workers
from tests.e2e.test_alerts import put_settings
from tests.e2e.test_delivery import Receiver, webhook
from tests.helpers import Account, self_profile, wait_until
from tests.ops_stack import VigilProcess, vigil_process

# Their own `vigil up` stacks: `make test` runs them without the session's stack beside them.
pytestmark = [pytest.mark.slow, pytest.mark.isolated]

DEVICES = 12
# A shard's write buffer holds at most this many rows (500,000 by default): small, so that
# the tens of devices of a drill fill it within seconds of the database stalling.
MAX_BUFFERED_ROWS = 300
DRILL_SETTINGS = {
    "shard_count": "2",
    "api_replicas": "2",
    "webhook_allow_private": "true",
    "shard_max_buffered_rows": str(MAX_BUFFERED_ROWS),
}


@pytest.fixture(scope="module")
def drill_stack() -> Iterator[VigilProcess]:
    with vigil_process(**DRILL_SETTINGS) as s:
        # A fresh stack has been seen to leave a first fleet's uploads unanswered for over a
        # minute: the drills start from a stack that has taken uploads. Not explained yet,
        # and not prevented by this: once in five runs (s21) the first drill's own fleet of
        # 12 new devices had no batch acknowledged within 60 s, after this warm-up passed.
        with Fleet(drill_account(s), s.url, 2) as warm:
            warm_up(warm, timeout_s=240)
        yield s


def drill_account(stack: VigilProcess) -> Account:
    """A new account whose profile alerts above 180 mg/dL."""
    client = httpx.Client(base_url=stack.url, timeout=30)
    email, password = f"drill-{uuid.uuid4().hex[:12]}@example.com", "a long enough passphrase"
    r = client.post("/v1/auth/signup", json={"email": email, "password": password, "name": "D"})
    assert r.status_code == 202, r.text
    # Seen on a loaded machine: the first login right after the sign-up refused; retry.
    token = wait_until(lambda: _login(client, email, password), 60, "a login of the new account")
    headers = {"Authorization": f"Bearer {token.json()['access_token']}"}
    account = Account(client, email, password, headers)
    r = put_settings(
        account, self_profile(account), {"glucose": [{"kind": "high", "threshold": 180}]}
    )
    assert r.status_code == 200, r.text
    return account


def _login(client: httpx.Client, email: str, password: str) -> httpx.Response | None:
    r = client.post("/v1/auth/token", data={"username": email, "password": password})
    return r if r.status_code == 200 else None


def warm_up(fleet: Fleet, timeout_s: float = 60) -> None:
    """Every device acknowledged at least once before the fault."""
    wait_until(lambda: all(d.acked for d in fleet.devices), timeout_s, "first uploads")


# PostgreSQL is down for this long (the figure).
DB_DOWN_S = 20.0
# From the database's restart to every device acknowledged again: the shard's write buffer
# retries with backoff capped at 5 s, a client waits at most Retry-After (5 s) before
# re-sending, the API's pool reconnects on its next query; 30 s leaves room for a loaded
# 2-core machine (3.1 and 5.4 s measured).
DB_RECOVERY_S = 30.0
# While it is down, an upload is refused at once once a shard's commit failed (database
# down); one whose rows were in the commit that failed, as soon as it failed; one that must
# read the database first (a device to load), as the connection is refused. 5 s leaves room
# for a loaded machine; a hang would be the shard's commit timeout (10 s) or more.
DB_REFUSED_WITHIN_S = 5.0


def test_postgresql_down_for_20_s_under_load(drill_stack: VigilProcess) -> None:
    """A fast shutdown of the postmaster (an outage: connections cut, new ones refused)."""
    fleet = Fleet(drill_account(drill_stack), drill_stack.url, DEVICES)
    with fleet:
        warm_up(fleet)
        stopping_at = time.monotonic()  # uploads under way as it stops count too
        stop = drill_stack.vigil("db", "stop")
        assert stop.returncode == 0, stop.stderr
        down_at = time.monotonic()
        while time.monotonic() - down_at < DB_DOWN_S:
            time.sleep(0.5)
        up_at = time.monotonic()
        start = drill_stack.vigil("db", "start")
        assert start.returncode == 0, start.stderr
        recovered_s = fleet.wait_acknowledged_after(time.monotonic(), DB_RECOVERY_S)
    slowest_s = fleet.slowest_refusal_s(stopping_at, up_at)
    print(
        f"ingest recovered {recovered_s:.1f} s after the restart; slowest 503 while down"
        f" {slowest_s:.1f} s; answers {fleet.answers}"
    )
    assert not fleet.failures, fleet.failures[:5]  # no 500, no request hung past 20 s
    assert fleet.answers["503"] > 0, "the outage was not seen by any client"
    assert slowest_s <= DB_REFUSED_WITHIN_S, slowest_s
    # Nothing can be stored while the database is down, so nothing may be acknowledged.
    assert fleet.acknowledged_within(down_at, up_at) == 0
    with drill_stack.connect() as db:
        fleet.check_stored(db)


# From the kill to every device acknowledged again: the router fails a call to a silent
# shard within ~2 s (503), Ray starts a new worker process for the detached actor (a few
# seconds, more on a loaded machine) and the shard reloads each device from the database on
# its first batch; clients wait Retry-After (2-5 s). 45 s: Ray's worker start on a busy
# 2-core machine has been seen to take 20 s.
SHARD_RECOVERY_S = 45.0


def test_shard_actor_killed_under_load(drill_stack: VigilProcess) -> None:
    """SIGKILL of a shard's worker process: rows in its buffer are lost, but they were not
    acknowledged, so their devices re-send them (duplicates where they had been committed)."""
    fleet = Fleet(drill_account(drill_stack), drill_stack.url, DEVICES)
    with fleet:
        warm_up(fleet)
        (victim, *_) = before = workers(drill_stack.proc.pid, "ray::DeviceShard")
        fleet.go_high()
        kill(victim)
        killed_at = time.monotonic()
        recovered_s = fleet.wait_acknowledged_after(killed_at, SHARD_RECOVERY_S)
        wait_until(
            lambda: len(workers(drill_stack.proc.pid, "ray::DeviceShard")) == len(before),
            SHARD_RECOVERY_S,
            "the shard's new process",
        )
    print(f"ingest recovered {recovered_s:.1f} s after the kill; answers {fleet.answers}")
    assert victim not in workers(drill_stack.proc.pid, "ray::DeviceShard")
    assert not fleet.failures, fleet.failures[:5]
    with drill_stack.connect() as db:
        fleet.check_stored(db)


# From the kill to every device acknowledged again: HAProxy takes the dead replica out at
# its next failed connection, and the other replica serves meanwhile; Serve's controller
# starts a replacement (health checks every few seconds, then a new worker). 60 s covers the
# replacement on a loaded machine.
API_RECOVERY_S = 60.0


def test_api_replica_killed_under_load(drill_stack: VigilProcess) -> None:
    """SIGKILL of one of the two API replicas: requests it held get a transport error or a
    503 and are re-sent; nothing it acknowledged is lost; Serve replaces it by itself."""
    fleet = Fleet(drill_account(drill_stack), drill_stack.url, DEVICES)
    with fleet:
        warm_up(fleet)
        (victim, *_) = before = workers(drill_stack.proc.pid, "ServeReplica")
        assert len(before) == 2, before
        fleet.go_high()
        kill(victim)
        killed_at = time.monotonic()
        recovered_s = fleet.wait_acknowledged_after(killed_at, API_RECOVERY_S)
        wait_until(
            lambda: len(workers(drill_stack.proc.pid, "ServeReplica")) == 2,
            API_RECOVERY_S,
            "a replacement replica",
        )
    print(f"ingest recovered {recovered_s:.1f} s after the kill; answers {fleet.answers}")
    assert victim not in workers(drill_stack.proc.pid, "ServeReplica")
    # A request the killed replica held gets 500 from Ray Serve's HAProxy (its template
    # turns 502/503/504 into 500): only those, at most one per device, each re-sent.
    assert {status for _, status in fleet.errors} <= {500}, fleet.failures[:5]
    assert all(sent < killed_at for sent, _ in fleet.errors), "a 500 after the kill"
    assert len(fleet.errors) <= DEVICES
    assert len(fleet.failures) == len(fleet.errors), fleet.failures[:5]
    with drill_stack.connect() as db:
        fleet.check_stored(db)


# From the kill to every alert delivered: Ray restarts the detached notifier at once, but
# it listens again only when an API replica's supervisor next asks it to (every 30 s,
# ``api.supervision.CHECK_S``); its catch-up then sends what fired meanwhile. 30 s + the
# restart + delivery: 60 s.
NOTIFIER_RECOVERY_S = 60.0


def test_notifier_killed_with_alerts_in_flight(drill_stack: VigilProcess) -> None:
    """The notifier is killed and every device then fires an alert while it is down or
    restarting: each alert reaches the webhook exactly once (one webhook-id per alert)."""
    account = drill_account(drill_stack)
    receiver = Receiver()
    try:
        webhook(account, receiver)
        fleet = Fleet(account, drill_stack.url, DEVICES)
        with fleet:
            warm_up(fleet)
            (victim,) = workers(drill_stack.proc.pid, "ray::AlertNotifier")
            kill(victim)
            killed_at = time.monotonic()
            fleet.go_high()
            got = receiver.wait(lambda g: len(g) >= DEVICES, NOTIFIER_RECOVERY_S)
            delivered_s = time.monotonic() - killed_at
        assert len(got) >= DEVICES, f"{len(got)} of {DEVICES} alerts delivered"
        ids = [p["_headers"]["webhook-id"] for p in got]
        alerts = [p["alert"]["id"] for p in got if p["event"] == "alert.fired"]
        assert len(ids) == len(set(ids)), "a webhook delivery was repeated"
        assert len(alerts) == len(set(alerts)) == DEVICES, alerts
        with drill_stack.connect() as db:
            fleet.check_stored(db)
            # The notifier's own record: one delivered webhook per alert, none sent twice.
            counts = db.execute(
                "SELECT count(*) FROM alert_deliveries WHERE alert_id = ANY(%s::uuid[])"
                " AND channel = 'webhook' AND status = 'delivered' GROUP BY alert_id",
                (alerts,),
            ).fetchall()
            assert sorted(c for (c,) in counts) == [1] * DEVICES, counts
        print(f"every alert delivered {delivered_s:.1f} s after the kill; {fleet.answers}")
    finally:
        receiver.close()


# The readings table is locked this long (ACCESS EXCLUSIVE, as a careless migration or a
# VACUUM FULL would): longer than the shard's commit timeout (10 s), so clients see both
# kinds of back-pressure (a full buffer at once, a commit timeout after 10 s).
LOCK_S = 12.0
# From the lock's release to every device acknowledged again: the blocked commit goes
# through at once; clients wait Retry-After (5 s) before re-sending. 30 s on a loaded machine.
LOCK_RECOVERY_S = 30.0


def buffered_rows(stack: VigilProcess) -> list[int]:
    """Each answering shard's write-buffer depth, from ``/readyz``."""
    r = httpx.get(f"{stack.url}/readyz", timeout=10)
    return [s["buffered_rows"] for s in r.json()["shard_states"] if s["answered"]]


def test_database_slowed_by_a_lock(drill_stack: VigilProcess) -> None:
    """A lock on the readings table stalls every commit: uploads get 503 with Retry-After
    (the buffer full, or the commit not done in time), and each shard's buffer stays within
    its configured bound instead of growing with the load."""
    # Batches of 100 (a gateway's backlog): four devices of a shard waiting at once hold more
    # than it may buffer; readings 10 ms apart, so that no device catches up with the clock.
    account = drill_account(drill_stack)
    fleet = Fleet(account, drill_stack.url, DEVICES, pace_s=0.05, batch=100, step_s=0.01)
    depths: list[int] = []
    with fleet:
        warm_up(fleet)
        with drill_stack.connect() as locker, locker.transaction():
            locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            fleet.go_high()
            locked_at = time.monotonic()
            while time.monotonic() - locked_at < LOCK_S:
                depths += buffered_rows(drill_stack)
                time.sleep(0.2)  # the sampling rate of the depth, nothing waits on it
        released_at = time.monotonic()
        recovered_s = fleet.wait_acknowledged_after(released_at, LOCK_RECOVERY_S)
    print(f"max depth {max(depths)}; recovered {recovered_s:.1f} s; answers {fleet.answers}")
    assert not fleet.failures, fleet.failures[:5]
    assert max(depths) <= MAX_BUFFERED_ROWS
    assert max(depths) > MAX_BUFFERED_ROWS - 100, (sorted(depths)[-10:], fleet.answers)
    assert fleet.answers["503 the database is not keeping up; retry later"] > 0
    with drill_stack.connect() as db:
        fleet.check_stored(db)


# Space on the database's disk comes back this long after it ran out.
DISK_FULL_S = 10.0
# From the space's return to every device acknowledged again: the shard's buffer retries
# with backoff capped at 5 s, the clients after Retry-After (5 s): 30 s on a loaded machine.
DISK_RECOVERY_S = 30.0
FILLER_ROWS = 300_000  # a readings partition of ~20 MB: bigger than a WAL segment (16 MB)


def postgres_pids(stack: VigilProcess) -> list[int]:
    """The embedded server's postmaster and every process it forked."""
    status = stack.vigil("db", "status")
    postmaster = int(status.stdout.split("pid", 1)[1].split(")", 1)[0])
    return [postmaster, *descendants(postmaster)]


# Sets RLIMIT_FSIZE of the given processes; run as their owner, who may (no privilege needed:
# root here lacks CAP_SYS_RESOURCE, which setting another user's limits would take).
_PRLIMIT = """
import contextlib, resource, sys
limit = int(sys.argv[1])
for pid in map(int, sys.argv[2:]):
    with contextlib.suppress(ProcessLookupError):
        _, hard = resource.prlimit(pid, resource.RLIMIT_FSIZE)
        resource.prlimit(pid, resource.RLIMIT_FSIZE, (limit, hard))
"""


def limit_file_size(pids: list[int], limit: int) -> None:
    """``RLIMIT_FSIZE`` of each process: PostgreSQL ignores SIGXFSZ, so a write past the
    limit is cut short, and PostgreSQL reports the short write as disk full (53100)."""
    owner = Path(f"/proc/{pids[0]}").stat()
    other = owner.st_uid != os.getuid()
    result = subprocess.run(
        ["/usr/bin/python3", "-c", _PRLIMIT, str(limit), *map(str, pids)],  # readable by all
        user=owner.st_uid if other else None,
        group=owner.st_gid if other else None,
        extra_groups=[] if other else None,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_database_disk_full(drill_stack: VigilProcess) -> None:
    """The relation the readings go to cannot grow (the disk under it is full, modelled by a
    file-size limit on the PostgreSQL processes just above the partition's size): uploads
    get 503 with Retry-After, none a 500 or a hang; the rows already stored stay intact;
    when space returns everything acknowledged is stored once and ingest resumes by itself.

    What the model does not give: PostgreSQL 15 reports the refused extension as
    ``XX000 could not extend file: File too large`` (EFBIG), not ``53100 disk_full``
    (ENOSPC), so the 503 here says "not keeping up"; the mapping of a real 53100 to "out of
    disk space" (``WriteBuffer.cause``) is not exercised by this drill."""
    account = drill_account(drill_stack)
    filler = account.device("glucose")["id"]
    fleet = Fleet(account, drill_stack.url, DEVICES, pace_s=0.05)
    with fleet:
        warm_up(fleet)
        with drill_stack.connect() as db:
            (partition,) = db.execute(
                "SELECT tableoid::regclass::text FROM readings WHERE device_id = %s LIMIT 1",
                (fleet.devices[0].id,),
            ).fetchone()
            # Rows of another device, in the same week as the fleet's (and before them).
            db.execute(
                "INSERT INTO readings (device_id, ts, value) SELECT %s,"
                " date_bin('7 days', %s::timestamptz, '2000-01-03') + i * interval '1 s', 100"
                " FROM generate_series(0, %s - 1) AS i",
                (filler, fleet.devices[0].start, FILLER_ROWS),
            )
            (size,) = db.execute("SELECT pg_relation_size(%s)", (partition,)).fetchone()
        # Below a WAL segment's 16 MB the limit would stop the WAL too (a PANIC, not this drill).
        assert size > 17 * 2**20, f"the partition holds only {size} bytes"
        # Half a block more than the heap: the next extension of it is a short write.
        refused = fleet.answers["503"]
        limit_file_size(postgres_pids(drill_stack), size + 4096)
        fleet.go_high()
        full_at = time.monotonic()
        try:
            wait_until(lambda: fleet.answers["503"] > refused, DISK_FULL_S + 30, "503s")
            while time.monotonic() - full_at < DISK_FULL_S:
                time.sleep(0.5)
        finally:
            limit_file_size(postgres_pids(drill_stack), resource.RLIM_INFINITY)
        recovered_s = fleet.wait_acknowledged_after(time.monotonic(), DISK_RECOVERY_S)
    print(f"ingest recovered {recovered_s:.1f} s after space returned; {fleet.answers}")
    assert not fleet.failures, fleet.failures[:5]
    with drill_stack.connect() as db:
        fleet.check_stored(db)
        (filled,) = db.execute(
            "SELECT count(*) FROM readings WHERE device_id = %s", (filler,)
        ).fetchone()
        assert filled == FILLER_ROWS  # the rows already there are intact
