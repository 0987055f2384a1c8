"""Tests of the embedded local PostgreSQL, against real servers (no mocks)."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from storage.embedded import (
    DB_SYSTEM_USER,
    EmbeddedPostgres,
    EmbeddedPostgresError,
    _listen_range,
    default_data_dir,
    find_pg_bindir,
    free_port,
    throwaway_postgres,
)


def _traversable_tmpdir() -> Path:
    """A temp dir the server user can reach when tests run as root (mkdtemp gives 0700)."""
    tmp = Path(tempfile.mkdtemp(prefix="vigil-pg-test-"))
    tmp.chmod(0o755)
    return tmp


@pytest.fixture(scope="module")
def pg() -> Iterator[EmbeddedPostgres]:
    """One throwaway server for the whole module, always stopped and removed at the end."""
    with throwaway_postgres("vigil-pg-test-", durable=False) as server:
        yield server


@pytest.fixture
def running(pg: EmbeddedPostgres) -> EmbeddedPostgres:
    """The shared server, (re)started in case an earlier test left it stopped."""
    pg.start()
    return pg


def _fetch(url: str, query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def test_connect_create_insert_select(running: EmbeddedPostgres) -> None:
    with psycopg.connect(running.url()) as conn:
        conn.execute("CREATE TABLE roundtrip (id int PRIMARY KEY, mg_dl real)")
        conn.execute("INSERT INTO roundtrip VALUES (1, 104.5), (2, 98)")
        rows = conn.execute("SELECT id, mg_dl FROM roundtrip ORDER BY id").fetchall()
        assert rows == [(1, 104.5), (2, 98.0)]
        assert conn.execute("SELECT current_database(), current_user").fetchone() == (
            "vigil",
            "vigil",
        )


def test_url_shape(running: EmbeddedPostgres) -> None:
    password = running.password_file.read_text().strip()
    assert running.url() == f"postgresql://vigil:{password}@127.0.0.1:{running.port}/vigil"


def test_wrong_password_is_rejected(running: EmbeddedPostgres) -> None:
    bad = running.url().replace(running.password_file.read_text().strip(), "wrong")
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        psycopg.connect(bad, connect_timeout=5)


def test_listens_on_loopback_only_and_settings(running: EmbeddedPostgres) -> None:
    settings = dict(
        _fetch(
            running.url(),
            "SELECT name, setting FROM pg_settings WHERE name IN "
            "('listen_addresses', 'max_connections', 'fsync', 'synchronous_commit', "
            "'full_page_writes', 'server_encoding', 'password_encryption')",
        )
    )
    assert settings == {
        "listen_addresses": "127.0.0.1",
        "max_connections": "200",
        "fsync": "off",  # durable=False
        "synchronous_commit": "off",
        "full_page_writes": "off",
        "server_encoding": "UTF8",
        "password_encryption": "scram-sha-256",
    }
    assert _fetch(running.url(), "SHOW listen_addresses") == [("127.0.0.1",)]


def test_password_file_is_private(running: EmbeddedPostgres) -> None:
    assert stat.S_IMODE(running.password_file.stat().st_mode) == 0o600
    assert stat.S_IMODE(running.socket_dir.stat().st_mode) == 0o700
    assert len(running.password_file.read_text().strip()) >= 24


def test_status_reflects_running(running: EmbeddedPostgres) -> None:
    status = running.status()
    assert status.running
    assert status.pid is not None and status.pid > 0
    assert status.port == running.port
    assert status.data_dir == running.data_dir
    assert status.url == running.url()


def test_start_twice_is_a_noop(running: EmbeddedPostgres) -> None:
    pid = running.status().pid
    running.start()
    running.init()
    assert running.status().pid == pid


def test_stop_then_start_keeps_data(running: EmbeddedPostgres) -> None:
    with psycopg.connect(running.url()) as conn:
        conn.execute("CREATE TABLE persisted (reading text)")
        conn.execute("INSERT INTO persisted VALUES ('kept')")

    running.stop()
    status = running.status()
    assert not status.running
    assert status.pid is None and status.url is None
    running.stop()  # stopping a stopped server is a no-op

    running.start()
    assert running.status().running
    assert _fetch(running.url(), "SELECT reading FROM persisted") == [("kept",)]


def test_stale_pidfile_is_not_running_and_start_recovers(running: EmbeddedPostgres) -> None:
    running.stop()
    dead = subprocess.Popen(["true"])
    dead.wait()
    pidfile = running.pgdata / "postmaster.pid"
    pidfile.write_text(f"{dead.pid}\n{running.pgdata}\n0\n{running.port}\n\n\n\n")
    assert not running.status().running

    running.start()
    assert running.status().running
    assert _fetch(running.url(), "SELECT 1") == [(1,)]


def test_start_failure_reports_log_tail(running: EmbeddedPostgres) -> None:
    running.stop()
    auto_conf = running.pgdata / "postgresql.auto.conf"
    original = auto_conf.read_text()
    auto_conf.write_text(original + "vigil_bogus_setting_without_dot = 1\n")
    try:
        with pytest.raises(EmbeddedPostgresError) as info:
            running.start(timeout_s=20)
        assert "vigil_bogus_setting_without_dot" in str(info.value)
        assert str(running.log_file) in str(info.value)
        assert not running.status().running
    finally:
        auto_conf.write_text(original)
    running.start()
    assert running.status().running


def test_port_taken_by_another_socket_is_a_clear_error() -> None:
    tmp = _traversable_tmpdir()
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
            blocker.bind(("127.0.0.1", 0))
            blocker.listen()
            port = blocker.getsockname()[1]
            server = EmbeddedPostgres(tmp / "data", port=port, durable=False)
            with pytest.raises(EmbeddedPostgresError, match=f"port {port}"):
                server.start()
            assert not server.status().running
            assert not server.is_initialised()  # fails fast, before initdb
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def test_free_port_is_bindable() -> None:
    port = free_port()
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", port))


def test_free_port_never_gives_a_port_to_avoid() -> None:
    """Ports picked for another server but not bound yet are free to the kernel: the avoided
    ones are never given, even when only one port of the range is left."""
    low, high = _listen_range()
    left = free_port()
    avoid = set(range(low, high + 1)) - {left}
    for _ in range(20):
        assert free_port(avoid=avoid) not in avoid


def test_rejects_non_loopback_host(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="loopback"):
        EmbeddedPostgres(tmp_path, host="0.0.0.0")


def test_find_pg_bindir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    bindir = find_pg_bindir()
    assert (bindir / "initdb").is_file() and (bindir / "pg_ctl").is_file()

    monkeypatch.setenv("VIGIL_PG_BINDIR", str(bindir))
    assert find_pg_bindir() == bindir

    monkeypatch.setenv("VIGIL_PG_BINDIR", str(tmp_path))
    with pytest.raises(EmbeddedPostgresError, match="apt-get install postgresql"):
        find_pg_bindir()


def test_default_data_dir(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "explicit"))
    assert default_data_dir() == tmp_path / "explicit"

    monkeypatch.delenv("VIGIL_DATA_DIR")
    if os.geteuid() == 0:
        assert default_data_dir() == Path("/var/lib/vigil")
    else:
        monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
        assert default_data_dir() == tmp_path / "xdg" / "vigil"
        monkeypatch.delenv("XDG_DATA_HOME")
        assert default_data_dir() == Path.home() / ".local" / "share" / "vigil"


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour")
def test_as_root_server_runs_as_unprivileged_user(running: EmbeddedPostgres) -> None:
    owner = pwd.getpwnam(DB_SYSTEM_USER)
    assert running.data_dir.stat().st_uid == owner.pw_uid
    assert running.pgdata.stat().st_uid == owner.pw_uid
    pid = running.status().pid
    assert Path(f"/proc/{pid}").stat().st_uid == owner.pw_uid


@pytest.mark.skipif(os.geteuid() != 0, reason="root-only behaviour")
def test_as_root_unreachable_data_dir_is_a_clear_error() -> None:
    private = Path(tempfile.mkdtemp(prefix="vigil-pg-private-"))  # 0700, owned by root
    try:
        server = EmbeddedPostgres(private / "data", port=free_port())
        with pytest.raises(EmbeddedPostgresError, match="VIGIL_DATA_DIR"):
            server.init()
    finally:
        shutil.rmtree(private, ignore_errors=True)
