"""A batch report task runs as idle work (``cluster.batch_reports.lower_priority``), so that
on a node shared with anything else the job cannot slow it."""

from __future__ import annotations

import subprocess
import sys


def test_a_batch_task_runs_every_thread_as_idle_work() -> None:
    """Niceness and scheduling policy are per thread on Linux: a worker's other threads
    (started before the task) are lowered too. Run in a child process: it cannot be undone."""
    script = (
        "import os, threading, time\n"
        "from cluster.batch_reports import BATCH_NICE, _threads, lower_priority\n"
        "t = threading.Thread(target=time.sleep, args=(3,)); t.start()\n"
        "lower_priority()\n"
        "tids = _threads()\n"
        "assert len(tids) >= 2, tids\n"
        "assert all(os.getpriority(os.PRIO_PROCESS, i) == BATCH_NICE for i in tids)\n"
        "assert all(os.sched_getscheduler(i) == os.SCHED_IDLE for i in tids)\n"
        "print('idle', len(tids))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and done.stdout.startswith("idle"), done.stderr
