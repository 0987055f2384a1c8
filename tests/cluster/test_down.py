"""`vigil down` signals only a process that is still `vigil up` (a stale pid file may name a
pid the system has since given to someone else)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.cli import app as cli


def _env(data_dir: Path) -> dict[str, str]:
    # An external database URL: `down` then leaves the embedded PostgreSQL alone.
    return {"VIGIL_DATA_DIR": str(data_dir), "VIGIL_DATABASE_URL": "postgresql://unused/x"}


@pytest.fixture
def sleeper(tmp_path: Path) -> Iterator[Callable[[str], subprocess.Popen]]:
    started: list[subprocess.Popen] = []

    def start(program_name: str) -> subprocess.Popen:
        script = tmp_path / program_name
        script.write_text("import time\ntime.sleep(120)\n")
        p = subprocess.Popen([sys.executable, str(script), "up"], start_new_session=True)
        started.append(p)
        return p

    yield start
    for p in started:
        if p.poll() is None:
            p.kill()
            p.wait()


def _pid_file(data_dir: Path, pid: int) -> Path:
    run = data_dir / "run"
    run.mkdir(parents=True)
    path = run / "vigil-up.pid"
    path.write_text(str(pid))
    return path


def test_down_leaves_a_process_that_reused_the_pid_alone(tmp_path: Path, sleeper) -> None:
    stranger = sleeper("someone-else")
    pid_file = _pid_file(tmp_path / "data", stranger.pid)
    result = CliRunner().invoke(cli, ["down", "--timeout-s", "5"], env=_env(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    assert "no longer `vigil up`" in result.output
    assert stranger.poll() is None, "a process that is not Vigil was signalled"
    assert not pid_file.exists()


def test_down_stops_vigil_up(tmp_path: Path, sleeper) -> None:
    vigil = sleeper("vigil")
    pid_file = _pid_file(tmp_path / "data", vigil.pid)
    result = CliRunner().invoke(cli, ["down", "--timeout-s", "5"], env=_env(tmp_path / "data"))
    assert result.exit_code == 0, result.output
    assert f"Stopped vigil up (pid {vigil.pid})" in result.output
    assert vigil.wait(timeout=10) == -15  # SIGTERM
    assert not pid_file.exists()
