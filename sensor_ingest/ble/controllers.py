"""Virtual Bluetooth controllers on one shared link, one TCP port per host process.

``python -m sensor_ingest.ble.controllers tcp-server:_:9001 tcp-server:_:9002`` plays the
part of ``python -m bumble.apps.controllers`` with one difference that matters for a
gateway: when a host process goes away (killed, crashed), its controller ends every link
it had — the peer gets an LL terminate, as it would when a radio goes quiet — stops
advertising and leaves the link. The stock app keeps the dead host's links up forever, so a
sensor stays "connected" to a gateway that no longer exists and the restarted gateway's
connect hangs. A new host connecting to the port gets a fresh controller.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys

from bumble import hci, ll
from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import StreamPacketSource

log = logging.getLogger(__name__)
REMOTE_USER_TERMINATED = hci.HCI_ErrorCode.REMOTE_USER_TERMINATED_CONNECTION_ERROR


def end_controller(controller: Controller, link: LocalLink) -> None:
    """Terminate the controller's LE links, stop its advertising and take it off the link."""
    for connection in list(controller.le_connections.values()):
        with contextlib.suppress(Exception):
            connection.send_ll_control_pdu(ll.TerminateInd(REMOTE_USER_TERMINATED))
        controller.le_connections.pop(connection.peer_address, None)
    controller.le_legacy_advertiser.stop()
    for advertising_set in controller.advertising_sets.values():
        handle = advertising_set.timer_handle
        if handle is not None:
            handle.cancel()
            advertising_set.timer_handle = None
    with contextlib.suppress(KeyError):
        link.remove_controller(controller)


class _HostSink:
    """Controller → host bytes; dropped once the host is gone."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self.transport: asyncio.Transport | None = transport

    def on_packet(self, packet: bytes) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(packet)


class _HostConnection(asyncio.Protocol):
    """One host process on one port: a controller that lives as long as the TCP connection."""

    def __init__(self, port: ControllerPort) -> None:
        self.port = port
        self.source = StreamPacketSource()
        self.sink: _HostSink | None = None
        self.controller: Controller | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        if self.port.active is not None:
            log.warning("%s: a host is already attached; refusing another", self.port.name)
            transport.close()
            return
        self.port.active = self
        self.sink = _HostSink(transport)
        self.controller = Controller(
            self.port.name, host_source=self.source, host_sink=self.sink, link=self.port.link
        )
        log.info("%s: host attached", self.port.name)

    def data_received(self, data: bytes) -> None:
        self.source.data_received(data)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.port.active is not self:
            return
        self.port.active = None
        if self.sink is not None:
            self.sink.transport = None
        if self.controller is not None:
            end_controller(self.controller, self.port.link)
        log.info("%s: host gone; its links are ended", self.port.name)


class ControllerPort:
    """A TCP port where one host process at a time gets a controller on ``link``."""

    def __init__(self, name: str, link: LocalLink, host: str | None, port: int) -> None:
        self.name = name
        self.link = link
        self.host = host
        self.port = port
        self.active: _HostConnection | None = None
        self.server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self.server = await loop.create_server(lambda: _HostConnection(self), self.host, self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
        if self.active is not None and self.active.controller is not None:
            end_controller(self.active.controller, self.link)


def parse_spec(spec: str) -> tuple[str | None, int]:
    """``tcp-server:_:9001`` (or ``_:9001``) → (None, 9001); ``_`` means every interface."""
    body = spec.removeprefix("tcp-server:")
    host, _, port = body.rpartition(":")
    if not port.isdigit():
        raise ValueError(f"{spec!r}: expected tcp-server:<host>:<port>")
    return (None if host in ("_", "") else host), int(port)


async def serve(specs: list[str], ready: asyncio.Event | None = None) -> None:
    link = LocalLink()
    ports = [ControllerPort(f"C{i}", link, *parse_spec(s)) for i, s in enumerate(specs)]
    for p in ports:
        await p.start()
        log.info("controller %s on port %d", p.name, p.port)
    if ready is not None:
        ready.set()
    try:
        await asyncio.get_running_loop().create_future()
    finally:
        for p in ports:
            await p.close()


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m sensor_ingest.ble.controllers tcp-server:_:9001 tcp-server:_:9002")
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
