"""Soak: steady ingest at half of the measured capacity for a long time (default 30 min).

First the capacity is measured in the same run, on the same stack: ``--capacity-s``
seconds of closed-loop uploads (``--concurrency`` requests in flight, each a batch of
``BATCH`` glucose readings of one device, never re-sent) give the batches per second the
stack sustains. The soak then sends batches open-loop at ``--rate`` per second (default:
half that capacity) for ``--minutes``, and prints:

- the memory of every process of the stack (Ray workers by actor, Ray's own daemons,
  PostgreSQL) at the start and at the end, resident (RSS) and private (``RssAnon``, what a
  leak grows: RSS also counts shared memory touched, such as PostgreSQL's shared buffers in
  every backend), with the growth (target < 5 %), and the private total every window;
- errors: responses other than 200, and failed requests (target 0);
- request latency p50/p99 per ``--window-s`` window (default 5 minutes; target: stable).

Linux only (reads /proc): it starts its own stack (2 shards, 2 API replicas, a throwaway
durable PostgreSQL) so that it knows the stack's processes; the access-token lifetime of
that stack covers the run (the load generator logs in once).

    .venv/bin/python -m bench.soak [--minutes 30] [--rate N] [--capacity-s 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import aiohttp
import numpy as np

from bench.ingest import register
from bench.stack import local_stack

BATCH = 10  # a phone relaying a sensor uploads a handful of readings at a time
STEP_S = 300


@dataclass
class Load:
    """What the load generator saw."""

    latencies: list[tuple[float, float]] = field(default_factory=list)  # (sent at, seconds)
    statuses: Counter = field(default_factory=Counter)
    failures: Counter = field(default_factory=Counter)

    @property
    def errors(self) -> int:
        return sum(n for s, n in self.statuses.items() if s != 200) + sum(self.failures.values())


class Devices:
    """Hands out each device's next batch of readings (timestamps only move forward)."""

    def __init__(self, registered: list[tuple]) -> None:
        self.registered = registered
        self.next_batch = [0] * len(registered)
        self.start = datetime.now(UTC) - timedelta(days=200)
        self.turn = 0

    def take(self) -> tuple[str, dict, bytes]:
        i = self.turn % len(self.registered)
        self.turn += 1
        n = self.next_batch[i]
        self.next_batch[i] += 1
        device_id, headers = self.registered[i]
        first = n * BATCH
        items = []
        for k in range(first, first + BATCH):
            ts = (self.start + timedelta(seconds=k * STEP_S)).isoformat()
            items.append(f'{{"ts":"{ts}","value":{120 + 40 * np.sin(k / 30):.1f}}}')
        return device_id, headers, ('{"readings":[' + ",".join(items) + "]}").encode()


async def post(session: aiohttp.ClientSession, url: str, devices: Devices, load: Load) -> None:
    device_id, headers, payload = devices.take()
    sent = time.monotonic()
    try:
        async with session.post(
            f"{url}/v1/devices/{device_id}/readings", data=payload, headers=headers
        ) as r:
            await r.read()
            load.statuses[r.status] += 1
    except (aiohttp.ClientError, TimeoutError) as exc:
        load.failures[type(exc).__name__] += 1
        return
    load.latencies.append((sent, time.monotonic() - sent))


async def capacity(
    session: aiohttp.ClientSession, url: str, devices: Devices, seconds: float, concurrency: int
) -> float:
    """Batches per second sustained with ``concurrency`` requests always in flight."""
    load = Load()
    deadline = time.monotonic() + seconds

    async def worker() -> None:
        while time.monotonic() < deadline:
            await post(session, url, devices, load)

    started = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    ok = load.statuses[200]
    print(
        f"capacity run: {ok} batches in {time.monotonic() - started:.1f} s,"
        f" errors {load.errors} {dict(load.statuses)} {dict(load.failures)}"
    )
    return ok / (time.monotonic() - started)


async def steady(
    session: aiohttp.ClientSession, url: str, devices: Devices, rate: float, seconds: float
) -> Load:
    """Open loop: a batch every 1/rate s whatever the answers (bounded in flight)."""
    load = Load()
    in_flight: set[asyncio.Task] = set()
    started = time.monotonic()
    sent = 0
    while (now := time.monotonic()) - started < seconds:
        due = int((now - started) * rate)
        while sent < due and len(in_flight) < 2000:
            task = asyncio.create_task(post(session, url, devices, load))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
            sent += 1
        await asyncio.sleep(0.005)
    await asyncio.gather(*in_flight)
    load.failures["not sent (2000 in flight)"] += max(0, int(seconds * rate) - sent)
    return load


# -- processes -------------------------------------------------------------------------------


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A memory figure of /proc/<pid>/status in KiB: ``VmRSS`` (resident), or ``RssAnon``
    (private: what a leak grows; RSS also counts the shared memory a process touches, such
    as PostgreSQL's shared buffers, counted again in every backend that reads them)."""
    for line in _read(f"/proc/{pid}/status").splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    return 0


def stack_processes(pg_data: Path) -> dict[int, str]:
    """pid -> name of the stack's processes: descendants of this process (Ray's daemons
    and workers) and the PostgreSQL server of ``pg_data`` with its children."""
    postmaster = int((pg_data / "postmaster.pid").read_text().split()[0])
    parents: dict[int, int] = {}
    names: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        pid = int(entry)
        stat = _read(f"/proc/{pid}/stat")
        if not stat:
            continue
        parents[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        cmd = _read(f"/proc/{pid}/cmdline").replace("\0", " ").strip()
        names[pid] = cmd
    me = os.getpid()

    def under(pid: int, root: int) -> bool:
        for _ in range(64):
            if pid == root:
                return True
            if pid <= 1:
                return False
            pid = parents.get(pid, 0)
        return False

    return {
        pid: _name(cmd)
        for pid, cmd in names.items()
        if pid != me and (under(pid, me) or under(pid, postmaster))
    }


def _name(cmd: str) -> str:
    """A stable, readable name: Ray workers by actor class, daemons by program."""
    if cmd.startswith("ray::"):
        return cmd.split()[0].split(".")[0]
    first = cmd.split()[0] if cmd else "?"
    if "postgres" in first:
        return "postgres " + " ".join(cmd.split()[1:3])[:40]
    return Path(first).name + (" " + cmd.split()[1][:40] if len(cmd.split()) > 1 else "")


def memory(processes: dict[int, str], field: str = "VmRSS") -> dict[int, int]:
    return {pid: rss_kib(pid, field) for pid in processes}


async def sample_private(processes: dict[int, str], every_s: float, into: list[float]) -> None:
    """The stack's total private memory (MiB) every ``every_s``: whether growth levels off."""
    while True:
        into.append(sum(memory(processes, "RssAnon").values()) / 1024)
        await asyncio.sleep(every_s)


def report_memory(processes: dict[int, str], start: dict[int, int], end: dict[int, int]) -> float:
    """Print memory per process; returns the total growth in percent."""
    print(f"{'pid':>8} {'process':<44} {'start MiB':>10} {'end MiB':>10} {'growth':>8}")
    for pid in sorted(processes, key=lambda p: -start.get(p, 0)):
        a, b = start.get(pid, 0), end.get(pid, 0)
        if a == 0:
            continue
        state = f"{100 * (b - a) / a:+.1f}%" if b else "exited"
        print(f"{pid:>8} {processes[pid][:44]:<44} {a / 1024:>10.1f} {b / 1024:>10.1f} {state:>8}")
    # Growth over the processes alive at both ends: a pooled PostgreSQL backend that closed
    # meanwhile is not memory given back, nor one opened since memory gained.
    alive = [p for p in start if start[p] and end.get(p)]
    total_a = sum(start[p] for p in alive)
    total_b = sum(end[p] for p in alive)
    growth = 100 * (total_b - total_a) / total_a if total_a else 0.0
    label = f"total of the {len(alive)} alive at both ends"
    print(f"{'':>8} {label:<44} {total_a / 1024:>10.1f} {total_b / 1024:>10.1f} {growth:+.1f}%")
    return growth


def report_windows(load: Load, started: float, window_s: float) -> list[float]:
    """Print p50/p99 per window; returns the p99s (ms)."""
    times = np.array([t for t, _ in load.latencies])
    lat = np.array([s for _, s in load.latencies]) * 1000
    p99s = []
    print(f"{'window':>14} {'requests':>9} {'p50 ms':>8} {'p99 ms':>8}")
    edges = np.arange(started, times.max() + window_s if len(times) else started, window_s)
    for a in edges:
        inside = lat[(times >= a) & (times < a + window_s)]
        if not len(inside):
            continue
        p50, p99 = np.percentile(inside, [50, 99])
        p99s.append(float(p99))
        label = f"{(a - started) / 60:.0f}-{(a - started + window_s) / 60:.0f} min"
        print(f"{label:>14} {len(inside):>9} {p50:>8.1f} {p99:>8.1f}")
    return p99s


async def soak(args: argparse.Namespace, url: str, pg_data: Path) -> None:
    connector = aiohttp.TCPConnector(limit=0)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        devices = Devices(await register(session, url, args.devices))
        measured = await capacity(session, url, devices, args.capacity_s, args.concurrency)
        rate = args.rate or measured / 2
        print(
            f"capacity: {measured:.0f} batches/s ({measured * BATCH:.0f} readings/s);"
            f" soak rate: {rate:.1f} batches/s ({rate * BATCH:.0f} readings/s)"
            f" for {args.minutes:g} min"
        )
        await asyncio.sleep(5)  # the capacity run's tail settles
        processes = stack_processes(pg_data)
        before = memory(processes)
        before_private = memory(processes, "RssAnon")
        samples: list[float] = []
        sampler = asyncio.create_task(sample_private(processes, args.window_s, samples))
        started = time.monotonic()
        load = await steady(session, url, devices, rate, args.minutes * 60)
        sampler.cancel()
        after = memory(processes)
        after_private = memory(processes, "RssAnon")
    print(f"\nmemory of the stack's {len(processes)} processes (RSS):")
    rss_growth = report_memory(processes, before, after)
    print("\nprivate memory of the same processes (RssAnon):")
    growth = report_memory(processes, before_private, after_private)
    print(
        f"private memory every {args.window_s / 60:g} min (MiB): "
        + " · ".join(f"{m:.0f}" for m in [*samples, sum(after_private.values()) / 1024])
    )
    print(f"\nlatency per {args.window_s / 60:g}-minute window:")
    p99s = report_windows(load, started, args.window_s)
    print(f"\nrequests: {sum(load.statuses.values())} answered {dict(load.statuses)}")
    print(f"failed requests: {dict(load.failures) or 0}")
    print(f"errors: {load.errors}")
    print(f"memory_growth_pct: {growth:.1f}")  # private memory
    print(f"rss_growth_pct: {rss_growth:.1f}")
    if p99s:
        print(f"p99_ms_min_max: {min(p99s):.1f} {max(p99s):.1f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--rate", type=float, help="batches/s; default: half the capacity")
    parser.add_argument("--capacity-s", type=float, default=30)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--devices", type=int, default=500)
    parser.add_argument("--window-s", type=float, default=300)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()
    # The load generator logs in once: its access tokens must outlive the run.
    ttl_s = int(args.minutes * 60 + args.capacity_s + 3600)
    with local_stack(shards=args.shards, replicas=args.replicas, access_token_ttl_s=ttl_s) as (
        url,
        pg_data,
        _database_url,
    ):
        asyncio.run(soak(args, url, pg_data))


if __name__ == "__main__":
    main()
