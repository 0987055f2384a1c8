"""CPU time per component, from ``/proc``, so that a benchmark can say where its CPU went.

Wall-clock figures on a shared machine measure the neighbours too; CPU seconds taken by
the stack's own processes do not. The stack a benchmark starts runs in its descendants
(Ray's raylet, GCS and workers, Serve's HAProxy); PostgreSQL is found from a backend's
parent (the postmaster) and its children. Processes are named by their command line.
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import psycopg

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")
LOAD_GENERATOR = "load generator"
POSTGRES = "PostgreSQL"


@dataclass(frozen=True, slots=True)
class Proc:
    ppid: int
    cpu_s: float  # user + system, this process (all its threads)
    cmdline: str


def processes() -> dict[int, Proc]:
    out: dict[int, Proc] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # fields[0] is field 3 of proc(5): ppid is field 4, utime 14, stime 15.
        cpu = (int(fields[11]) + int(fields[12])) * _TICK_S
        out[int(entry.name)] = Proc(int(fields[1]), cpu, cmdline.strip())
    return out


def postmaster_pid(database_url: str) -> int:
    with psycopg.connect(database_url) as conn:  # read while the backend still runs
        row = conn.execute("SELECT pg_backend_pid()").fetchone()
        assert row is not None
        return processes()[row[0]].ppid


def database_commits(database_url: str) -> int:
    """Transactions committed in the database so far (PostgreSQL's statistics, which each
    backend reports at most about once a second): over a window of a minute or more, how
    many commits the work took."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"
        ).fetchone()
        assert row is not None
        return int(row[0])


def component(cmdline: str) -> str:
    if "DeviceShard" in cmdline:
        return "DeviceShard"
    if "ServeReplica" in cmdline:
        return "Serve replicas"
    if "AlertNotifier" in cmdline:
        return "notifier"
    if "haproxy" in cmdline:
        return "HAProxy"
    return "Ray system"  # raylet, GCS, dashboard, Serve controller and proxy, idle workers


def _descendants(roots: set[int], procs: dict[int, Proc]) -> set[int]:
    found = set(roots) & set(procs)
    grew = True
    while grew:
        more = {pid for pid, p in procs.items() if p.ppid in found} - found
        found |= more
        grew = bool(more)
    return found


def snapshot(postmaster: int | None) -> dict[int, tuple[str, float]]:
    """(component, CPU seconds) of every process of the stack and of this load generator."""
    procs = processes()
    me = os.getpid()
    pg = _descendants({postmaster}, procs) if postmaster else set()
    out = {me: (LOAD_GENERATOR, procs[me].cpu_s)}
    for pid in _descendants({me}, procs) - {me} - pg:
        out[pid] = (component(procs[pid].cmdline), procs[pid].cpu_s)
    for pid in pg:
        out[pid] = (POSTGRES, procs[pid].cpu_s)
    return out


def cpu_split(
    before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]
) -> dict[str, float]:
    """CPU seconds per component between two snapshots (processes that ended meanwhile are
    missed; ones that started count from zero)."""
    spent: defaultdict[str, float] = defaultdict(float)
    for pid, (name, cpu) in after.items():
        spent[name] += cpu - before.get(pid, (name, 0.0))[1]
    return dict(spent)


def machine_yardstick_ms() -> float:
    """CPU ms this process takes for a fixed piece of Python work of the kinds Vigil's
    processes do (JSON in and out, small numpy arrays, small objects): measured while the
    stack is idle, before and after a run, it tells how fast the machine was in that run.
    Machines of the same kind differ by up to 4 times and this one's speed moves by a third
    within minutes, so an absolute figure (ms CPU per reading) is read beside it."""
    import json

    import numpy as np

    reading = {"ts": "2026-11-24T07:15:00+00:00", "value": 112.5, "rate": -1.25, "dir": "Flat"}
    spent = []
    for attempt in range(4):  # the first warms up (imports, caches); the median of three
        start = time.process_time()
        for i in range(5000):
            text = json.dumps({"seq": i, "readings": [reading] * 4})
            parsed = json.loads(text)
            values = np.array([r["value"] for r in parsed["readings"]], dtype=np.float64)
            _ = Proc(i, float(np.diff(values).sum()), str(float(values.mean())))
        if attempt:
            spent.append((time.process_time() - start) * 1000.0)
    return sorted(spent)[1]


def print_cpu(cpu_s: dict[str, float], readings: int, unit: str = "ms") -> float:
    """CPU per acknowledged reading, per component and for Vigil's processes together (the
    load generator left out), in ``unit``: ``ms`` (``cpu_ms_per_reading[...]``) or ``us``;
    returns Vigil's."""
    per = (1e3 if unit == "ms" else 1e6) / max(readings, 1)
    for name, seconds in sorted(cpu_s.items(), key=lambda kv: -kv[1]):
        print(f"cpu_{unit}_per_reading[{name}]: {seconds * per:.3f}")
    vigil = sum(v for k, v in cpu_s.items() if k != LOAD_GENERATOR)
    print(f"readings_measured={readings}")
    print(f"vigil_cpu_{unit}_per_reading: {vigil * per:.3f}")
    return vigil * per
