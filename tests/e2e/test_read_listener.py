"""The polled reads reach each replica's read listener through the real HAProxy
(``api.read_listener``, ``cluster.ingress``), and Serve's listeners when none is up."""

from __future__ import annotations

import csv
import fcntl
import re
import socket
import time
import uuid
from pathlib import Path

import httpx
import numpy as np
import pytest

from cluster.ingress import READS_BACKEND, haproxy_dir
from tests.helpers import Account, store_readings, wait_until


def _config(run_dir: Path) -> str:
    """HAProxy's configuration as Serve last wrote it: read under the lock Serve writes it
    under (it truncates the file, then writes it)."""
    path = next(haproxy_dir(run_dir).glob("*/haproxy.cfg"))
    with open(f"{path}.lock", "a") as lock:
        fcntl.flock(lock.fileno(), fcntl.LOCK_SH)
        try:
            return path.read_text()
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def _admin(run_dir: Path, command: str) -> str:
    """One command on HAProxy's admin socket (mode 600: this user's)."""
    path = next(haproxy_dir(run_dir).glob("**/admin.sock"))
    with socket.socket(socket.AF_UNIX) as s:
        s.connect(str(path))
        s.sendall(command.encode() + b"\n")
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks).decode()


def _servers(run_dir: Path) -> dict[tuple[str, str], dict[str, str]]:
    """HAProxy's statistics per (backend, server)."""
    text = _admin(run_dir, "show stat").lstrip("# ")
    return {(r["pxname"], r["svname"]): r for r in csv.DictReader(text.splitlines())}


def _sessions(run_dir: Path, backend: str) -> int:
    """Requests HAProxy has sent to the servers of ``backend`` so far."""
    return sum(
        int(r["stot"])
        for (b, s), r in _servers(run_dir).items()
        if b == backend and s not in ("FRONTEND", "BACKEND")
    )


def _serve_backend(config: str) -> str:
    """The name of the backend Serve renders for Vigil's app (the one path-routed at /)."""
    (name,) = {
        b for b in re.findall(r"^backend (\S+)$", config, re.M) if b not in (READS_BACKEND,)
    } - {"default_backend"}
    return name


@pytest.fixture
def device(account: Account, database_url: str) -> str:
    d = account.device("glucose")["id"]
    ts = time.time() - np.array([900.0, 600.0, 300.0])
    store_readings(database_url, d, ts, np.array([101.0, 102.0, 103.0]))
    return d


def test_every_replica_has_a_read_listener_beside_its_serve_port(stack) -> None:
    # Read once it lists the replicas (once, first in a session, it was read without them).
    def listing_replicas() -> str | None:
        config = _config(stack.settings.run_dir)
        return config if "server SERVE_REPLICA" in config else None

    config = wait_until(listing_replicas, 30, "Serve's replicas in HAProxy's configuration")
    serve = _serve_backend(config)
    block = config.split(f"backend {serve}\n")[1]
    theirs = re.findall(r"^\s*server (SERVE_REPLICA\S+) ([^\s:]+):(\d+) check ", block, re.M)
    reads = config.split(f"backend {READS_BACKEND}\n")[1].split("\nbackend ")[0]
    ours = re.findall(r"^\s*server (\S+) ([^\s:]+):(\d+) check ", reads, re.M)
    assert theirs, config  # the stack's replicas
    # One offset for all (the width of Serve's replica port range: the block above it).
    offset = int(ours[0][2]) - int(theirs[0][2])
    assert offset >= 64
    assert ours == [(n, h, str(int(p) + offset)) for n, h, p in theirs]
    assert "option httpchk GET /healthz" in reads
    stats = _servers(stack.settings.run_dir)
    assert all(stats[(READS_BACKEND, n)]["status"] == "UP" for n, _, _ in ours), stats


def test_the_polled_reads_go_to_the_read_listeners(stack, account: Account, device: str) -> None:
    run_dir = stack.settings.run_dir
    serve = _serve_backend(_config(run_dir))
    before = _sessions(run_dir, READS_BACKEND), _sessions(run_dir, serve)
    rid = f"test-{uuid.uuid4().hex}"
    with httpx.Client(base_url=stack.url, timeout=30) as c:
        for _ in range(10):
            latest = c.get(f"/v1/devices/{device}/latest", headers=account.headers)
            window = c.get(f"/v1/devices/{device}/readings", headers=account.headers)
            assert latest.status_code == window.status_code == 200, (latest.text, window.text)
        assert latest.json()["value"] == 103.0
        assert [r["value"] for r in window.json()] == [101.0, 102.0, 103.0]
        # The response carries the request id: a well-formed incoming one, else a new one.
        echoed = c.get(
            f"/v1/devices/{device}/latest", headers={**account.headers, "X-Request-ID": rid}
        )
        assert echoed.headers.get_list("x-request-id") == [rid]
        made = c.get(
            f"/v1/devices/{device}/latest", headers={**account.headers, "X-Request-ID": "x"}
        )
        (new,) = made.headers.get_list("x-request-id")
        assert re.fullmatch(r"[0-9a-f]{32}", new)
        # An unknown device and a bad query get the app's own answers here too.
        missing = c.get(f"/v1/devices/{uuid.uuid4()}/latest", headers=account.headers)
        assert missing.status_code == 404, missing.text
        bad = c.get(f"/v1/devices/{device}/readings?limit=0", headers=account.headers)
        assert bad.status_code == 422 and "limit" in bad.text
        other = c.get("/v1/profiles", headers=account.headers)  # not a polled read: Serve's
        assert other.status_code == 200
    reads, serves = (
        _sessions(run_dir, READS_BACKEND) - before[0],
        _sessions(run_dir, serve) - before[1],
    )
    assert reads >= 24, (reads, serves)
    assert serves >= 1  # /v1/profiles


def test_reads_go_to_serve_while_no_read_listener_is_up(
    stack, account: Account, device: str
) -> None:
    run_dir = stack.settings.run_dir
    serve = _serve_backend(_config(run_dir))
    names = [
        s for b, s in _servers(run_dir) if b == READS_BACKEND and s not in ("FRONTEND", "BACKEND")
    ]
    for name in names:
        assert _admin(run_dir, f"disable server {READS_BACKEND}/{name}").strip() == ""
    try:
        before = _sessions(run_dir, READS_BACKEND), _sessions(run_dir, serve)
        with httpx.Client(base_url=stack.url, timeout=30) as c:
            for _ in range(5):
                r = c.get(f"/v1/devices/{device}/latest", headers=account.headers)
                assert r.status_code == 200 and r.json()["value"] == 103.0, r.text
        assert _sessions(run_dir, READS_BACKEND) == before[0]
        assert _sessions(run_dir, serve) - before[1] >= 5
    finally:
        for name in names:
            _admin(run_dir, f"enable server {READS_BACKEND}/{name}")
