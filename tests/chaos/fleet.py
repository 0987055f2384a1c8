"""A small fleet of devices uploading under load, as phones and gateways do: each device
sends its next batch only once the previous one was acknowledged, re-sends a refused or
failed batch after ``Retry-After``, and remembers which readings Vigil acknowledged.

The drills compare that record with the database: acknowledged = stored, once each.
Every answer is counted by kind, so a drill can assert that an outage gave 503s with
Retry-After, never a 500 and never a request hung past its timeout.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import psycopg

from tests.helpers import Account, minutes_ago

# A request that takes longer than this is a hung request (a failure): the shard answers
# within its commit timeout (10 s) and the router within ~2 s of a shard going silent.
REQUEST_TIMEOUT_S = 20.0
LOW, HIGH = 120.0, 250.0  # every device crosses the drills' high threshold (180) once
STEP_S = 0.25  # seconds between a device's readings (timestamps)
# The fleet's readings start this long ago and may run this far ahead of the clock (Vigil
# takes readings up to 5 minutes ahead): alerts notify only for readings under 15 minutes old.
START_AGO_MIN = 10
AHEAD_S = 60


@dataclass
class Device:
    id: str
    start: datetime
    high_from: int | None = None  # index of the first reading above the threshold
    acked: list[datetime] = field(default_factory=list)
    last_ack: float = 0.0  # monotonic time of the newest acknowledgement
    next_index: int = 0


class Fleet:
    """``devices`` uploading from one thread each until :meth:`stop`."""

    def __init__(
        self,
        account: Account,
        base_url: str,
        devices: int,
        pace_s: float = 0.2,
        batch: int = 3,
        step_s: float = STEP_S,
    ):
        self.account = account
        self.batch = batch
        self.step_s = step_s
        self.base_url = base_url
        self.pace_s = pace_s
        start = minutes_ago(START_AGO_MIN)
        self.devices = [Device(account.device("glucose")["id"], start) for _ in range(devices)]
        self.answers: Counter[str] = Counter()  # "200", "503", "timeout", "transport", ...
        self.failures: list[str] = []  # anything a client must never see
        self.acks: list[tuple[float, float]] = []  # (sent, answered) of every 200, monotonic
        self.errors: list[tuple[float, int]] = []  # (sent, status) of every other than 200/503
        self.refusals: list[tuple[float, float]] = []  # (sent, answered) of every 503
        self.lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._run, args=(d,), daemon=True) for d in self.devices
        ]

    def __enter__(self) -> Fleet:
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self, timeout_s: float = 60.0) -> None:
        """Stop after each device's batch in hand is acknowledged (or ``timeout_s``)."""
        self._stop.set()
        deadline = time.monotonic() + timeout_s
        for t in self._threads:
            t.join(max(0.1, deadline - time.monotonic()))
        alive = [t for t in self._threads if t.is_alive()]
        assert not alive, f"{len(alive)} devices still had an unacknowledged batch"

    def _count(self, answer: str, failure: str | None = None) -> None:
        with self.lock:
            self.answers[answer] += 1
            if failure is not None:
                self.failures.append(failure)

    def _batch(self, d: Device) -> list[dict]:
        first = d.next_index
        return [
            {
                "ts": (d.start + timedelta(seconds=self.step_s * i)).isoformat(),
                "value": HIGH if d.high_from is not None and i >= d.high_from else LOW,
            }
            for i in range(first, first + self.batch)
        ]

    def go_high(self) -> None:
        """From each device's next batch on, its readings are above the threshold: each
        device fires one alert, while whatever the drill breaks is broken."""
        for d in self.devices:
            d.high_from = d.next_index + self.batch  # after the batch in hand

    def _run(self, d: Device) -> None:
        headers = self.account.headers
        with httpx.Client(base_url=self.base_url, timeout=REQUEST_TIMEOUT_S) as client:
            batch: list[dict] | None = None
            while batch is not None or not self._stop.is_set():
                if batch is None:
                    ahead = d.start + timedelta(seconds=self.step_s * d.next_index) - now()
                    if ahead.total_seconds() > AHEAD_S:
                        time.sleep(0.1)  # as a live sensor: no faster than the clock
                        continue
                    batch = self._batch(d)
                sent = time.monotonic()
                try:
                    r = client.post(
                        f"/v1/devices/{d.id}/readings", json={"readings": batch}, headers=headers
                    )
                except httpx.TimeoutException:
                    self._count("timeout", f"no answer within {REQUEST_TIMEOUT_S} s")
                    continue
                except httpx.TransportError:
                    self._count("transport")  # connection refused or reset: re-send
                    time.sleep(0.2)
                    continue
                if r.status_code == 200:
                    self._count("200")
                    with self.lock:
                        self.acks.append((sent, time.monotonic()))
                    d.acked.extend(datetime.fromisoformat(x["ts"]) for x in batch)
                    d.last_ack = time.monotonic()
                    d.next_index += self.batch
                    batch = None
                    time.sleep(self.pace_s)
                elif r.status_code == 503:
                    with self.lock:
                        self.refusals.append((sent, time.monotonic()))
                    retry = r.headers.get("Retry-After")
                    self._count("503", None if retry else f"503 without Retry-After: {r.text}")
                    self._count(f"503 {r.json().get('detail')}")
                    time.sleep(min(float(retry or 1), 5.0))
                else:
                    self._count(str(r.status_code), f"{r.status_code}: {r.text[:300]}")
                    with self.lock:
                        self.errors.append((sent, r.status_code))
                    time.sleep(0.5)

    def acknowledged_within(self, start: float, end: float) -> int:
        """Uploads sent after ``start`` and acknowledged before ``end``."""
        with self.lock:
            return sum(start < sent and answered < end for sent, answered in self.acks)

    def slowest_refusal_s(self, start: float, end: float) -> float:
        """The longest a 503 sent between ``start`` and ``end`` took to come back."""
        with self.lock:
            return max((b - a for a, b in self.refusals if start <= a <= end), default=0.0)

    def wait_acknowledged_after(self, t: float, timeout_s: float) -> float:
        """Seconds from ``t`` until every device had a batch acknowledged after ``t``;
        AssertionError past ``timeout_s``."""
        deadline = t + timeout_s
        while time.monotonic() < deadline:
            if all(d.last_ack > t for d in self.devices):
                return max(d.last_ack for d in self.devices) - t
            time.sleep(0.1)
        late = sum(d.last_ack <= t for d in self.devices)
        raise AssertionError(f"{late} devices not acknowledged {timeout_s} s after {t}")

    def check_stored(self, db: psycopg.Connection) -> None:
        """Every acknowledged reading stored, once; nothing stored that no device sent;
        one high alert per device that crossed the threshold, none doubled."""
        ids = [d.id for d in self.devices]
        rows = db.execute(
            "SELECT device_id::text, ts FROM readings WHERE device_id = ANY(%s::uuid[])", (ids,)
        ).fetchall()
        stored: dict[str, list[datetime]] = {}
        for device_id, ts in rows:
            stored.setdefault(device_id, []).append(ts)
        for d in self.devices:
            got = stored.get(d.id, [])
            assert len(got) == len(set(got)), f"device {d.id} has a reading stored twice"
            missing = set(d.acked) - set(got)
            assert not missing, f"{len(missing)} acknowledged readings of {d.id} not stored"
            count = d.next_index + self.batch
            sent = {d.start + timedelta(seconds=self.step_s * i) for i in range(count)}
            assert set(got) <= sent, f"device {d.id} has readings nobody sent"
            assert d.acked, f"device {d.id} never had a batch acknowledged"
        alerts = dict(
            db.execute(
                "SELECT device_id::text, count(*) FROM alerts"
                " WHERE device_id = ANY(%s::uuid[]) AND rule = 'high' GROUP BY device_id",
                (ids,),
            ).fetchall()
        )
        for d in self.devices:
            high = d.start + timedelta(seconds=self.step_s * (d.high_from or 10**9))
            crossed = any(ts >= high for ts in d.acked)
            assert alerts.get(d.id, 0) == (1 if crossed else 0), (d.id, alerts.get(d.id))


def now() -> datetime:
    return datetime.now(UTC)


def descendants(pid: int) -> list[int]:
    """Every process under ``pid`` (the Ray daemons and workers ``vigil up`` started)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        children = parents.get(todo.pop(), [])
        found += children
        todo += children
    return found


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def workers(root_pid: int, marker: str) -> list[int]:
    """The pids under ``root_pid`` whose command line names ``marker`` (``ray::DeviceShard``
    is how Ray titles a shard's worker process)."""
    return [p for p in descendants(root_pid) if marker in cmdline(p)]


def kill(pid: int) -> None:
    os.kill(pid, signal.SIGKILL)
