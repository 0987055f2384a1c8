"""A second HTTP listener in each Serve replica, for the two polled reads.

Apps and followers poll ``GET /v1/devices/{id}/latest`` and ``GET …/readings``. Behind
Serve's HAProxy ingress each request reaches the replica's own uvicorn server, whose
per-request handling in Serve (request metadata, ids, metrics, queue and ongoing-request
accounting) cost as much CPU as Vigil's whole read: one replica served 1,192 reads/s on
Serve's port and 2,188/s with the same app on a plain uvicorn (docs/benchmarks.md).

So each replica also runs the same app object on a plain uvicorn server of its own, on the
event loop the app already runs on (its pools, caches and batchers are shared), at a port
HAProxy can work out from Serve's: Serve's port plus :func:`port_offset`. Vigil's edit of
Serve's HAProxy template (``cluster.ingress``) sends the two reads to those ports while
any of them passes its health check, and everything else, as before, to Serve's.

- Where: Serve starts its listener after the app's startup, on a port its controller
  allocates. This listener finds that port among the process's own listening sockets
  (``/proc``), in Serve's replica port range, and binds beside it on the same address.
- Request ids: Serve puts ``X-Request-ID`` on its responses; here the app's own
  :class:`~api.request_id.RequestIdMiddleware` does, asked to by the scope
  (``api.request_id.RESPOND``).
- Client address: uvicorn trusts ``X-Forwarded-For`` from the same peers Serve's
  listener does (``FORWARDED_ALLOW_IPS``, set by ``cluster.ingress``).
- One write per response: uvicorn writes a response's head and its body separately; here
  what the protocol writes within one pass of the event loop goes out as one write
  (:class:`_OneWrite`), so HAProxy reads one segment per read instead of two.
- Metrics: HAProxy logs nothing for the reads it routes here (its per-request log line
  is what feeds Serve's ``serve_num_http_requests`` and ``serve_http_request_latency_ms``,
  parsed in Python by Serve's HAProxy manager: about 8 % of a read's CPU); this listener
  records every request it answers in ``vigil_read_request_seconds`` (by ``route`` and
  ``status_code``; its ``_count`` is the request count).
- Stopping: HAProxy drops a stopping replica's servers, both of them, during Serve's
  drain window; the app's shutdown then closes this listener and lets requests in flight
  finish before the pools close.
- Off with ``VIGIL_READ_LISTENER=0`` (every process of the cluster), or without Serve's
  HAProxy ingress.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from actors import metrics
from api.request_id import RESPOND

log = logging.getLogger(__name__)

ENV = "VIGIL_READ_LISTENER"
# Serve's replica HTTP port range (its constants read the same variables and defaults).
RANGE_ENV = ("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT")
DEFAULT_RANGE = (30000, 31000)
FIND_EVERY_S = 0.01
FIND_FOR_S = 120.0  # Serve starts its listener once the replica's constructor has run
DRAIN_S = 10  # requests in flight when the listener stops get this long to finish


def enabled() -> bool:
    """Whether replicas run the read listener and the ingress routes reads to it: Serve's
    HAProxy ingress is on (it is what knows the ports) and ``VIGIL_READ_LISTENER`` is not
    ``0``. Read from the environment, the same in every process of a node."""
    return os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") == "1" and os.environ.get(ENV) != "0"


def serve_port_range() -> tuple[int, int]:
    low, high = (int(os.environ.get(n) or d) for n, d in zip(RANGE_ENV, DEFAULT_RANGE, strict=True))
    return low, high


def port_offset() -> int:
    """Read listener port minus Serve's port: the width of Serve's range, so the read
    listeners take the block just above it."""
    low, high = serve_port_range()
    return high - low + 1


def _socket_inodes(fd_dir: Path) -> set[int]:
    inodes = set()
    for fd in fd_dir.iterdir():
        with contextlib.suppress(OSError):  # closed meanwhile
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
    return inodes


def _address(hex_address: str) -> tuple[str, int]:
    """``/proc/net/tcp``'s ``0100007F:7530`` as ``("127.0.0.1", 30000)``."""
    host, port = hex_address.split(":")
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return socket.inet_ntop(socket.AF_INET, raw[::-1]), int(port, 16)
    # IPv6: four 32-bit words, each in host (little-endian) order.
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    return socket.inet_ntop(socket.AF_INET6, words), int(port, 16)


def _listening(proc: Path) -> Iterator[tuple[str, int]]:
    """(address, port) of every TCP socket this process listens on."""
    mine = _socket_inodes(proc / "fd")
    for table in ("tcp", "tcp6"):
        path = proc / "net" / table
        if not path.exists():
            continue
        for line in path.read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and int(fields[9]) in mine:  # LISTEN
                yield _address(fields[1])


def serve_listener(proc: Path = Path("/proc/self")) -> tuple[str, int] | None:
    """The address and port of Serve's listener in this process: the one in Serve's
    replica port range, or None while there is none."""
    low, high = serve_port_range()
    found = [(h, p) for h, p in _listening(proc) if low <= p <= high]
    return min(found, key=lambda a: a[1]) if found else None


# The polled reads HAProxy sends to the read listeners (``cluster.ingress`` renders it as the
# frontend's ``path_reg``), whose last segment names the route.
READ_PATHS = "^/v1/devices/[^/]+/(latest|readings)$"
_READ = re.compile(READ_PATHS)


def route_of(path: str) -> str:
    """The route label of ``vigil_read_request_seconds``: a polled read by its path template,
    the health check, or ``other`` (sent to this port by someone other than HAProxy)."""
    if path == "/healthz":
        return path
    read = _READ.match(path)
    return f"/v1/devices/{{device_id}}/{read[1]}" if read else "other"


class _Coalescing:
    """A transport whose writes within one pass of the event loop go out as one."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport
        self._pending: list[bytes] = []

    def write(self, data: bytes) -> None:
        if not self._pending:
            asyncio.get_running_loop().call_soon(self._flush)
        self._pending.append(data)

    def _flush(self) -> None:
        if self._pending:
            data = b"".join(self._pending)
            self._pending.clear()
            if not self._transport.is_closing():
                self._transport.write(data)

    def close(self) -> None:
        self._flush()
        self._transport.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class _OneWrite(HttpToolsProtocol):
    """uvicorn's HTTP protocol, writing each response (head and body) in one write."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(_Coalescing(transport))  # type: ignore[arg-type]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the replica's signals are Ray's, not this server's


class ReadListener:
    """The listener of one replica: started by :meth:`start`, stopped by :meth:`stop`."""

    def __init__(self, app: Any) -> None:
        async def answering(scope: Any, receive: Any, send: Any) -> None:
            """The app, answering with request ids and counting what it answers."""
            started, status = time.perf_counter(), 500

            async def noting_status(message: Any) -> None:
                nonlocal status
                if message["type"] == "http.response.start":
                    status = message["status"]
                await send(message)

            try:
                scope[RESPOND] = True
                await app(scope, receive, noting_status)
            finally:
                metrics.observe(
                    "vigil_read_request_seconds",
                    time.perf_counter() - started,
                    route=route_of(scope["path"]),
                    status_code=str(status),
                )

        self.app = answering
        self.port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._finding: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Wait in the background for Serve's listener, then listen beside it."""
        self._finding = asyncio.get_running_loop().create_task(self._find_and_listen())

    async def _find_and_listen(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + FIND_FOR_S
        while (found := serve_listener()) is None:
            if loop.time() > deadline:
                log.error("read listener not started: no Serve listener in this replica")
                return
            await asyncio.sleep(FIND_EVERY_S)
        host, serve_port = found
        port = serve_port + port_offset()
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as e:
            sock.close()
            log.error("read listener not started: %s:%d: %s", host, port, e.strerror)
            return
        config = uvicorn.Config(
            self.app,
            host=host,
            port=port,
            loop="none",
            lifespan="off",
            ws="none",
            access_log=False,
            log_config=None,
            log_level=None,
            proxy_headers=True,  # from FORWARDED_ALLOW_IPS, as Serve's listener
            timeout_keep_alive=90,  # HAProxy keeps its connections (http-reuse always)
            timeout_graceful_shutdown=DRAIN_S,
            http=_OneWrite,
        )
        self._server = _Server(config)
        self.port = port
        self._task = loop.create_task(self._server.serve(sockets=[sock]))
        log.info("read listener on %s:%d beside Serve's %d", host, port, serve_port)

    async def stop(self) -> None:
        """Stop accepting; requests in flight finish (up to ``DRAIN_S``)."""
        if self._finding is not None:
            self._finding.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._finding
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
