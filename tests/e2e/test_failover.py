"""Failover drill, the application's side (issue 17 part 4): Vigil on a primary with a
synchronous standby (`vigil db standby`), readings uploading, the primary killed with
SIGKILL, the standby promoted (`vigil db promote`). Vigil reconnects by itself through its
database URL listing both servers (``target_session_attrs=read-write``), acknowledging
uploads again within RECOVERY_S of the promotion; meanwhile clients get 503 with
Retry-After, never a 500 nor a 401; every reading acknowledged is on the new primary,
exactly once.

Runs in the isolated pytest process (``make test``'s second one): it starts its own Ray.
Its 401s "unknown signing key" in earlier runs were requests answered by another stack on
the host (Serve's fallback proxy on Ray's fixed, shared port; see cluster.stack)."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg
import pytest

from storage.embedded import EmbeddedPostgres
from tests.helpers import sign_up
from tests.ops_stack import VigilProcess

BATCH = 5
STEP_S = 300
RECOVERY_S = 30  # promotion to the first upload acknowledged again, nobody touching Vigil
GAP_503_S = 30  # the kill to the first 503 (commit timeout 10 s, a loaded machine)


def both_hosts(url: str, standby_port: str) -> str:
    """``url`` (one server) listing the standby too, for whichever takes writes."""
    head, tail = url.split("@", 1)
    hostport, rest = tail.split("/", 1)
    sep = "&" if "?" in rest else "?"
    return (
        f"{head}@{hostport},127.0.0.1:{standby_port}/{rest}{sep}"
        "target_session_attrs=read-write"  # asyncpg refuses libpq's connect_timeout
    )


def sync_states(primary: EmbeddedPostgres) -> list[tuple]:
    with psycopg.connect(primary.url()) as conn:
        return conn.execute("SELECT sync_state FROM pg_stat_replication").fetchall()


class Uploader(threading.Thread):
    """One device uploading batches back to back, re-sending a batch refused with 503 (as the
    simulator and the phone apps do); keeps every answer."""

    def __init__(self, client: httpx.Client, device_id: str, headers: dict) -> None:
        super().__init__(daemon=True)
        self.client, self.device_id, self.headers = client, device_id, headers
        self.start_at = datetime.now(UTC).replace(microsecond=0) - timedelta(days=6)
        self.acknowledged: list[str] = []
        self.answers: list[tuple[float, int, str | None]] = []  # (time, status, Retry-After)
        self.refusals: Counter[str] = Counter()  # the bodies of answers neither 200 nor 503
        self.stop = threading.Event()

    def batch(self, n: int) -> list[dict]:
        first = n * BATCH
        return [
            {
                "ts": (self.start_at + timedelta(seconds=(first + i) * STEP_S)).isoformat(),
                "value": 100 + (first + i) % 50,
            }
            for i in range(BATCH)
        ]

    def run(self) -> None:
        n = 0
        while not self.stop.is_set():
            readings = self.batch(n)
            try:
                r = self.client.post(
                    f"/v1/devices/{self.device_id}/readings",
                    json={"readings": readings},
                    headers=self.headers,
                    timeout=30,
                )
            except httpx.TransportError:
                self.answers.append((time.monotonic(), 0, None))
                time.sleep(0.5)
                continue
            self.answers.append((time.monotonic(), r.status_code, r.headers.get("retry-after")))
            if r.status_code not in (200, 503):
                self.refusals[f"{r.status_code} {r.text[:200]}"] += 1
            if r.status_code == 200:
                self.acknowledged += [x["ts"] for x in readings]
                n += 1
                time.sleep(0.05)
            else:
                time.sleep(min(float(r.headers.get("retry-after") or 1), 2))

    def ok_since(self, t: float) -> int:
        return self.answered(200, since=t)

    def answered(self, status: int, since: float) -> int:
        return sum(1 for at, s, _ in self.answers if at > since and s == status)


@pytest.mark.slow
@pytest.mark.isolated
def test_vigil_rides_through_the_primary_killed_and_the_standby_promoted() -> None:
    base = Path(tempfile.mkdtemp(prefix="vigil-failover-"))
    base.chmod(0o755)  # the database's unprivileged user must reach its data directory
    stack = VigilProcess(base)
    primary = EmbeddedPostgres(base / "data" / "postgres", port=int(stack.env["VIGIL_DB_PORT"]))
    standby = EmbeddedPostgres(
        base / "data" / "postgres-standby", port=int(stack.env["VIGIL_STANDBY_PORT"])
    )
    uploader = None
    log_tail = ""
    began = time.monotonic()
    try:
        # the standby first (a synchronous primary waits for it on every commit, migrations
        # included), then the primary restarted to wait for it, as docs/operations.md says
        for command in (("db", "start"), ("db", "standby"), ("db", "stop"), ("db", "start")):
            done = stack.vigil(*command, timeout=120)
            assert done.returncode == 0, done.stdout + done.stderr
            if command == ("db", "stop"):
                stack.env["VIGIL_SYNCHRONOUS_STANDBY"] = "true"
        deadline = time.monotonic() + 60
        while sync_states(primary) != [("sync",)]:  # the standby reconnects to the restart
            assert time.monotonic() < deadline, sync_states(primary)
            time.sleep(0.5)
        url = both_hosts(stack.database_url(), stack.env["VIGIL_STANDBY_PORT"])
        stack.env["VIGIL_DATABASE_URL"] = url
        stack.start()
        up = time.monotonic()
        client = httpx.Client(base_url=stack.url, timeout=30)
        account = sign_up(client)
        device = account.device("glucose")
        uploader = Uploader(client, device["id"], account.headers)
        uploader.start()
        deadline = time.monotonic() + 30
        while uploader.ok_since(0) < 20:
            assert time.monotonic() < deadline, (uploader.answers[-5:], uploader.refusals)
            time.sleep(0.2)

        pid = primary.status().pid
        assert pid is not None
        killed = time.monotonic()
        os.kill(pid, signal.SIGKILL)  # no shutdown checkpoint, no goodbye to the standby
        # The operator (or an orchestrator) notices the outage by its 503s, and promotes. A
        # promotion quicker than the shards' commit timeout (10 s) would leave the waiting
        # uploads to succeed late, with no 503 to see: the gap is at least that long.
        deadline = killed + GAP_503_S
        while not uploader.answered(503, since=killed):
            assert time.monotonic() < deadline, Counter(s for _, s, _ in uploader.answers)
            time.sleep(0.2)
        done = stack.vigil("db", "promote")
        assert done.returncode == 0, done.stdout + done.stderr
        promoted = time.monotonic()
        deadline = promoted + 45
        while uploader.ok_since(promoted) < 20:  # back by itself, nobody restarted Vigil
            assert time.monotonic() < deadline, (
                Counter(s for _, s, _ in uploader.answers),
                uploader.refusals,
                (base / "vigil-up.log").read_text(errors="replace")[-4000:],
            )
            time.sleep(0.2)
        uploader.stop.set()
        uploader.join(60)
        with psycopg.connect(standby.url()) as conn:  # the new primary
            stored = conn.execute(
                "SELECT ts FROM readings WHERE device_id = %s", (device["id"],)
            ).fetchall()
    finally:
        if uploader is not None:
            uploader.stop.set()
        stack.stop()
        if (base / "vigil-up.log").exists():
            log_tail = (base / "vigil-up.log").read_text(errors="replace")[-6000:]
        standby.stop()
        primary.stop()
        shutil.rmtree(base, ignore_errors=True)

    # never a 500, never a dropped connection, never a 401 (every request reached this stack)
    everything = Counter(s for _, s, _ in uploader.answers)
    assert set(everything) <= {200, 503}, (everything, uploader.refusals, log_tail)
    after = [(at, s, ra) for at, s, ra in uploader.answers if at > killed]
    statuses = Counter(s for _, s, _ in after)
    assert statuses[503] > 0  # the outage was seen, and said so
    assert all(ra is not None and int(ra) >= 1 for _, s, ra in after if s == 503)
    back_s = min(at for at, s, _ in after if s == 200 and at > promoted) - promoted
    assert back_s < RECOVERY_S, back_s
    acknowledged = Counter(datetime.fromisoformat(ts) for ts in uploader.acknowledged)
    on_new_primary = Counter(ts for (ts,) in stored)
    assert max(acknowledged.values()) == 1 and max(on_new_primary.values()) == 1
    assert set(acknowledged) <= set(on_new_primary), "an acknowledged reading was lost"
    # and nothing stored that was never sent (a refused batch is re-sent, stored once)
    assert len(on_new_primary) - len(acknowledged) <= BATCH
    print(
        f"failover drill: {dict(statuses)} after the kill; writes back {back_s:.1f} s after"
        f" promotion; {len(acknowledged)} readings acknowledged, all on the new primary;"
        f" databases and Vigil up in {up - began:.0f} s,"
        f" drill and teardown {time.monotonic() - up:.0f} s"
    )
