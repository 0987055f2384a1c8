"""The ingress's backup server is this stack's own (the cause of the failover drill's 401s).

While no replica is up (startup, a replica replaced or marked down), Serve's HAProxy sends
every request to its backup server, Serve's fallback proxy. Ray gives that proxy a fixed port
(8500) bound with SO_REUSEPORT, so on a host running two stacks both fallback proxies listened
on it and the kernel split the connections between them: a request reached the other
stack's database and its token was "unknown signing key". Vigil now gives each stack's
fallback proxy a port of its own (``cluster.stack.FALLBACK_PROXY_PORTS``).
"""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from cluster.ingress import haproxy_dir
from cluster.stack import FALLBACK_PROXY_PORTS


def backup_ports(run_dir: Path) -> set[int]:
    """The ports of the backup servers in this stack's HAProxy configuration."""
    config = next(haproxy_dir(run_dir).glob("*/haproxy.cfg")).read_text()
    return {int(p) for p in re.findall(r"^\s*server \S+ [^\s:]+:(\d+) check backup", config, re.M)}


def listeners_on(port: int) -> int:
    """How many sockets listen on ``port`` (SO_REUSEPORT lets several share one)."""
    count = 0
    for name in ("tcp", "tcp6"):
        for line in Path(f"/proc/net/{name}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            count += state == "0A" and int(local.rsplit(":", 1)[1], 16) == port
    return count


def test_the_ingress_falls_back_to_this_stacks_own_proxy(stack) -> None:
    fallback = stack.listener_ports[FALLBACK_PROXY_PORTS[0]]
    assert backup_ports(stack.settings.run_dir) == {fallback}
    assert listeners_on(fallback) == 1  # this stack's fallback proxy alone
    ours = httpx.get(f"{stack.url}/.well-known/jwks.json", timeout=30).json()
    for _ in range(5):  # a new connection each time: none reaches another stack
        via_fallback = httpx.get(f"http://127.0.0.1:{fallback}/.well-known/jwks.json", timeout=30)
        assert via_fallback.status_code == 200, via_fallback.text
        assert via_fallback.json() == ours
