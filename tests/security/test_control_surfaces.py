"""Issue 10, finding 4: a local stack exposes no control surface beyond this machine.

HAProxy's admin socket is private to the service user; its stats page, its Prometheus
exporter, the HTTP API, the replicas' own ports and the embedded PostgreSQL listen on
loopback only. Ray's own gRPC ports cannot be bound to loopback in Ray 2.60 (it resolves a
loopback node address to the machine's address and listens on all interfaces); they are
guarded by Ray's token authentication, which is on and whose token file is private. The
shards' ingest channels listen where Ray's ports do (the node's address) and take nothing
from a connection that does not first present the channel's token, which only an
authenticated Ray call hands out."""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import stat
from pathlib import Path
from urllib.parse import urlparse

import ray

from cluster.ingress import haproxy_dir
from tests.helpers import CHANNEL_PORTS


def listening() -> dict[int, set[str]]:
    """Every TCP port in LISTEN state on this machine and the addresses it is bound to."""
    out: dict[int, set[str]] = {}
    for name, size in (("tcp", 4), ("tcp6", 16)):
        lines = Path(f"/proc/net/{name}").read_text().splitlines()[1:]
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order
            words = [raw[i : i + 4][::-1] for i in range(0, size, 4)]
            addr = ipaddress.ip_address(b"".join(words))
            out.setdefault(int(port_hex, 16), set()).add(str(addr))
    return out


def loopback(address: str) -> bool:
    ip = ipaddress.ip_address(address)
    mapped = getattr(ip, "ipv4_mapped", None)
    return (mapped or ip).is_loopback


def outside_address() -> str:
    """An address of this machine that is not loopback (where a neighbour would connect)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the route's source
        address = s.getsockname()[0]
    assert not loopback(address), address
    return address


def replica_ports(stack) -> list[int]:
    """The replicas' own HTTP ports: the servers of our HAProxy's backends."""
    config = next(haproxy_dir(stack.settings.run_dir).glob("*/haproxy.cfg")).read_text()
    servers = re.findall(r"^\s*server \S+ [^\s:]+:(\d+) check", config, re.MULTILINE)
    return sorted({int(port) for port in servers})


def test_the_haproxy_admin_socket_is_private(stack) -> None:
    base = haproxy_dir(stack.settings.run_dir)
    sockets = list(base.glob("*/admin.sock"))
    assert sockets, f"no admin socket under {base}"
    assert stat.S_IMODE(base.stat().st_mode) == 0o700
    for path in sockets:
        info = path.stat()
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) & 0o077 == 0, oct(info.st_mode)
        assert info.st_uid == os.getuid()
    config = next(base.glob("*/haproxy.cfg")).read_text()
    assert "mode 600 level admin" in config and "mode 666" not in config


def test_ingress_api_and_database_listen_on_loopback_only(stack) -> None:
    ports = listening()
    ours = {
        "http": stack.settings.http_port,
        "haproxy stats": stack.listener_ports["RAY_SERVE_HAPROXY_STATS_PORT"],
        "haproxy metrics": stack.listener_ports["RAY_SERVE_HAPROXY_METRICS_PORT"],
        "serve fallback proxy": stack.listener_ports["RAY_SERVE_FALLBACK_PROXY_HTTP_PORT"],
        "postgres": urlparse(stack.database_url).port,
    }
    ours |= {f"replica {p}": p for p in replica_ports(stack)}
    assert any(name.startswith("replica") for name in ours), "no replica port found"
    exposed = {name: ports.get(port) for name, port in ours.items()}
    assert all(exposed.values()), exposed  # each is listening
    assert {n: a for n, a in exposed.items() if not all(map(loopback, a))} == {}
    neighbour = outside_address()
    for name, port in ours.items():
        with socket.socket() as s:
            s.settimeout(2)
            assert s.connect_ex((neighbour, port)) != 0, f"{name} reachable on {neighbour}"


def test_a_shards_ingest_channel_takes_nothing_without_its_token(stack) -> None:
    from actors.router import shard_name

    shard = ray.get_actor(shard_name(0), namespace=stack.settings.namespace)
    address = ray.get(shard.channel.remote(), timeout=30)
    assert len(address.token) == 32 and address.port in listening()
    low, high = CHANNEL_PORTS  # the stack's VIGIL_SHARD_CHANNEL_PORTS
    assert low <= address.port <= high, address.port
    before = ray.get(shard.status.remote(), timeout=30)["channel_calls"]
    call = bytes.fromhex("030000000700000000000000") + b"abc"  # a call frame
    for token in (bytes(32), address.token[:-1] + bytes([address.token[-1] ^ 1])):
        with socket.create_connection((address.host, address.port), timeout=10) as s:
            s.sendall(b"VGC1" + token + call)
            try:
                answer = s.recv(100)
            except ConnectionResetError:  # closed with the call unread
                answer = b""
            assert answer == b""  # closed: no answer, no error text
    assert ray.get(shard.status.remote(), timeout=30)["channel_calls"] == before


def test_rays_own_ports_require_its_token_and_the_token_is_private(stack) -> None:
    from ray._private.authentication.authentication_token_setup import (
        _get_default_token_path,
    )
    from ray._raylet import AuthenticationMode, get_authentication_mode

    assert ray.is_initialized()
    assert get_authentication_mode() == AuthenticationMode.TOKEN
    token = _get_default_token_path()
    assert stat.S_IMODE(token.stat().st_mode) & 0o077 == 0, oct(token.stat().st_mode)
