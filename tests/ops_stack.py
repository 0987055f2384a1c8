"""A whole Vigil (`vigil up`, embedded PostgreSQL) run as a separate process, for drills.

The session ``stack`` fixture shares one database and one Serve instance with every test;
a drill that restores, kills or fails over the database needs its own, configured the way
an operator would (environment variables) and driven with the same ``vigil`` commands.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg

from cluster.stack import wait_ready
from storage.embedded import free_port

ROOT = Path(__file__).resolve().parent.parent


class VigilProcess:
    """``vigil up`` in a child process with its own ports, data directory and namespace."""

    def __init__(self, base: Path, **settings: str) -> None:
        self.base = base
        self.http_port = free_port()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("VIGIL_")} | {
            "PYTHONPATH": str(ROOT),
            "VIGIL_DATA_DIR": str(base / "data"),
            "VIGIL_HTTP_PORT": str(self.http_port),
            "VIGIL_DB_PORT": str(free_port()),
            "VIGIL_STANDBY_PORT": str(free_port()),
            "VIGIL_NAMESPACE": f"vigil-drill-{uuid.uuid4().hex[:8]}",
            "VIGIL_SHARD_COUNT": "1",
            "VIGIL_LOGIN_MAX_FAILURES_PER_ADDRESS": "100000",
            # every account of a drill signs up from 127.0.0.1: lift the per-address limits
            "VIGIL_RATE_LIMITS": json.dumps(
                {
                    name: {"count": 100_000, "window_s": 60}
                    for name in ("signup_per_address", "login_per_address", "reset_per_address")
                }
            ),
        }
        self.env |= {f"VIGIL_{k.upper()}": v for k, v in settings.items()}
        if "backup_target" in settings:  # relative: inside this stack's directory
            self.env["VIGIL_BACKUP_TARGET"] = str(base / settings["backup_target"])
        self.proc: subprocess.Popen[bytes] | None = None
        self._database_url: str | None = None  # `vigil db url` costs a Python start-up

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    def vigil(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a ``vigil`` command with this stack's settings."""
        if args[:2] not in (("db", "url"), ("db", "backup")):
            self._database_url = None  # a restore, promotion or restart may change it
        return subprocess.run(
            [sys.executable, "-m", "cluster.cli", *args],
            env=self.env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def database_url(self) -> str:
        if self._database_url is None:
            result = self.vigil("db", "url")
            assert result.returncode == 0, result.stderr
            self._database_url = result.stdout.strip()
        return self._database_url

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(self.database_url(), autocommit=True)

    def start(self) -> None:
        log = (self.base / "vigil-up.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cluster.cli", "up"],
            env=self.env,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300
        while self.proc.poll() is None and time.monotonic() < deadline:
            with contextlib.suppress(RuntimeError):
                wait_ready(self.url, timeout_s=5)
                return
        tail = (self.base / "vigil-up.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"vigil up did not become ready; its output:\n{tail}")

    def stop(self) -> None:
        """Stop ``vigil up`` (which stops its Ray and the embedded PostgreSQL it started)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        self.vigil("db", "stop")


@contextmanager
def vigil_process(**settings: str) -> Iterator[VigilProcess]:
    """A started :class:`VigilProcess` in a new temporary directory, stopped and removed."""
    base = Path(tempfile.mkdtemp(prefix="vigil-drill-"))
    base.chmod(0o755)  # the database's unprivileged user must reach the data directory
    stack = VigilProcess(base, **settings)
    try:
        stack.start()
        yield stack
    finally:
        stack.stop()
        shutil.rmtree(base, ignore_errors=True)
