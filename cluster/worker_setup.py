"""What every Ray worker runs when it starts (Ray's ``worker_process_setup_hook``, which
takes one function): the HAProxy hardening of the ingress, then, under `make test`, the
periodic saving of the worker's coverage data.

Coverage starts itself in each worker (``patch = subprocess`` in pyproject.toml), but Ray
ends shard, notifier and Serve replica processes without running ``atexit``, where coverage
would write its data; so a measured worker saves it every few seconds instead. Outside a
coverage run (production, where coverage is not even installed) this part does nothing.
"""

from __future__ import annotations

import contextlib
import threading
import time

from cluster.ingress import harden_haproxy

COVERAGE_SAVE_EVERY_S = 2.0


def setup_worker() -> None:
    harden_haproxy()
    save_coverage_periodically()


def save_coverage_periodically(every_s: float = COVERAGE_SAVE_EVERY_S) -> threading.Thread | None:
    """Start a daemon thread saving this process's coverage data; None when not measured."""
    try:
        import coverage
    except ImportError:  # pragma: no cover - production installs have no coverage
        return None
    cov = coverage.Coverage.current()
    if cov is None:
        return None

    def save_forever() -> None:
        while True:
            time.sleep(every_s)
            with contextlib.suppress(Exception):  # a failed save must never hurt the worker
                cov.save()

    thread = threading.Thread(target=save_forever, name="vigil-coverage-save", daemon=True)
    thread.start()
    return thread
