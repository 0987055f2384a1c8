"""The GATT link on bumble, Google's Python Bluetooth stack: a real host and GATT client over
any bumble HCI transport — a USB dongle (``usb:0``), a serial HCI, the TCP ports of virtual
controllers in another process (``tcp-client:127.0.0.1:9001``) — or a controller on an
in-process :class:`bumble.link.LocalLink` shared with virtual sensors (tests, the demo).

bumble cuts a notification to the ATT MTU without a word (23 bytes by default: one CGM
record with all its fields and CRC is 17), so every connection asks for a larger MTU
first. bumble allows one LE connection attempt at a time, so connects are serialised.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

from bumble.controller import Controller
from bumble.core import UUID, AdvertisingData, BaseBumbleError
from bumble.device import Advertisement as BumbleAdvertisement
from bumble.device import Connection, Device, Peer
from bumble.gatt_client import CharacteristicProxy
from bumble.hci import Address
from bumble.host import Host
from bumble.link import LocalLink
from bumble.transport import open_transport
from bumble.transport.common import AsyncPipeSink, Transport

from sensor_ingest.ble.link import Advertisement, LinkError, NoAdapterError, Subscriber

ATT_MTU = 247
"""The MTU the gateway asks for (the largest LE data length; 244-byte notifications)."""
GATEWAY_ADDRESS = "C0:98:E5:49:00:01"
T = TypeVar("T")


@dataclass
class BumbleHost:
    """A bumble Device with its host, on a transport or a local link; ``close`` ends it."""

    device: Device
    transport: Transport | None = None

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.device.power_off()
        if self.transport is not None:
            await self.transport.close()


async def open_host(
    name: str, address: str, *, transport: str | None = None, local_link: LocalLink | None = None
) -> BumbleHost:
    """A powered-on bumble Device at ``address`` over ``transport`` or on ``local_link``."""
    if local_link is not None:
        controller = Controller(name, link=local_link)
        hci = Host(controller, AsyncPipeSink(controller))
        device = Device(name=name, address=Address(address), host=hci)
        host = BumbleHost(device)
    else:
        if not transport:
            raise NoAdapterError("bumble needs an HCI transport name, e.g. usb:0")
        try:
            opened = await open_transport(transport)
        except (OSError, BaseBumbleError, ValueError) as exc:
            raise NoAdapterError(f"cannot open bumble transport {transport!r}: {exc}") from exc
        device = Device.with_hci(name, Address(address), opened.source, opened.sink)
        host = BumbleHost(device, opened)
    try:
        await asyncio.wait_for(device.power_on(), 10.0)
    except (TimeoutError, BaseBumbleError) as exc:
        await host.close()
        raise NoAdapterError(f"the controller did not power on: {exc}") from exc
    return host


def services_of(advertisement: BumbleAdvertisement) -> tuple[int, ...]:
    """16-bit service UUIDs in an advertisement."""
    out: list[int] = []
    for tag in (
        AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
        AdvertisingData.INCOMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
    ):
        for uuid in advertisement.data.get(tag) or []:
            out.append(int.from_bytes(bytes(uuid), "little"))
    return tuple(out)


class BumbleConnection:
    """A connected peripheral with its discovered characteristics."""

    def __init__(
        self,
        connection: Connection,
        peer: Peer,
        chars: dict[tuple[int, int], CharacteristicProxy],
    ) -> None:
        self.address = str(connection.peer_address).split("/")[0]
        self._connection = connection
        self._peer = peer
        self._chars = chars
        self._gone = asyncio.Event()
        connection.on("disconnection", lambda *_: self._gone.set())

    def has(self, service: int, characteristic: int) -> bool:
        return (service, characteristic) in self._chars

    def _char(self, service: int, characteristic: int) -> CharacteristicProxy:
        try:
            return self._chars[(service, characteristic)]
        except KeyError:
            raise LinkError(f"no characteristic 0x{characteristic:04X}") from None

    async def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        if self._gone.is_set():
            coro.close()
            raise LinkError("disconnected")
        try:
            return await coro
        except (BaseBumbleError, ConnectionError) as exc:
            raise LinkError(f"GATT: {exc}") from exc

    async def read(self, service: int, characteristic: int) -> bytes:
        char = self._char(service, characteristic)
        return bytes(await self._call(self._peer.read_value(char)))

    async def write(self, service: int, characteristic: int, value: bytes) -> None:
        char = self._char(service, characteristic)
        await self._call(self._peer.write_value(char, value, with_response=True))

    async def subscribe(self, service: int, characteristic: int, callback: Subscriber) -> None:
        char = self._char(service, characteristic)
        await self._call(self._peer.subscribe(char, lambda value: callback(bytes(value))))

    async def disconnect(self) -> None:
        if not self._gone.is_set():
            with contextlib.suppress(BaseBumbleError, ConnectionError):
                await self._connection.disconnect()

    async def wait_disconnected(self) -> None:
        await self._gone.wait()


class BumbleLink:
    """:class:`~sensor_ingest.ble.link.GattLink` on bumble."""

    def __init__(
        self,
        transport: str | None = None,
        *,
        local_link: LocalLink | None = None,
        address: str = GATEWAY_ADDRESS,
    ) -> None:
        self.transport = transport
        self.local_link = local_link
        self.address = address
        self._host: BumbleHost | None = None
        self._connecting = asyncio.Lock()

    @property
    def device(self) -> Device:
        if self._host is None:
            raise LinkError("the link is not open")
        return self._host.device

    async def open(self) -> None:
        self._host = await open_host(
            "vigil-gateway", self.address, transport=self.transport, local_link=self.local_link
        )

    async def close(self) -> None:
        if self._host is not None:
            await self._host.close()
            self._host = None

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        seen: dict[str, Advertisement] = {}

        def on_advertisement(adv: BumbleAdvertisement) -> None:
            name = adv.data.get(AdvertisingData.COMPLETE_LOCAL_NAME)
            address = str(adv.address).split("/")[0]
            seen[address] = Advertisement(
                address, name if isinstance(name, str) else None, services_of(adv), adv.rssi
            )

        self.device.on("advertisement", on_advertisement)
        try:
            await self.device.start_scanning(filter_duplicates=True)
            await asyncio.sleep(timeout_s)
            await self.device.stop_scanning()
        finally:
            self.device.remove_listener("advertisement", on_advertisement)
        return list(seen.values())

    async def connect(self, address: str, timeout_s: float) -> BumbleConnection:
        async with self._connecting:
            try:
                connection = await self.device.connect(address, timeout=timeout_s)
            except (BaseBumbleError, TimeoutError, ConnectionError) as exc:
                raise LinkError(f"connect to {address}: {exc or type(exc).__name__}") from exc
        try:
            return await asyncio.wait_for(_discover(connection), timeout_s)
        except (BaseBumbleError, TimeoutError, ConnectionError) as exc:
            with contextlib.suppress(Exception):
                await connection.disconnect()
            raise LinkError(f"discovery on {address}: {exc or type(exc).__name__}") from exc


async def _discover(connection: Connection) -> BumbleConnection:
    peer = Peer(connection)
    await peer.request_mtu(ATT_MTU)
    await peer.discover_services()
    chars: dict[tuple[int, int], CharacteristicProxy] = {}
    for service in peer.services:
        await service.discover_characteristics()
        for char in service.characteristics:
            chars[(_short(service.uuid), _short(char.uuid))] = char
    return BumbleConnection(connection, peer, chars)


def _short(uuid: UUID) -> int:
    data = bytes(uuid)
    return int.from_bytes(data, "little") if len(data) == 2 else -1
