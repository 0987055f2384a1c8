"""The GATT link on bleak, for real radios: BlueZ on Linux (a Raspberry Pi), CoreBluetooth on
macOS, WinRT on Windows. The OS stack negotiates the ATT MTU itself.

bleak is reached through two seams, ``discover`` (``BleakScanner.discover``) and
``client_factory`` (``BleakClient``), so tests can stand in a fake radio at exactly the
calls used here. Whatever bleak or the OS raises becomes a ``LinkError``; a machine without
an adapter (no BlueZ D-Bus, no controller) gives a ``NoAdapterError`` that says so.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any

from bleak import BleakClient, BleakScanner
from bleak.exc import BleakError

from sensor_ingest.ble.link import Advertisement, LinkError, NoAdapterError, Subscriber
from sensor_ingest.ble.uuids import full_uuid

NO_ADAPTER = (
    "no Bluetooth adapter found: on Linux, install and start BlueZ (bluetoothd) and check "
    "`bluetoothctl list`; or use the bumble backend with an HCI transport"
)
Discover = Callable[[float], Awaitable[dict[str, tuple[Any, Any]]]]


async def _discover(timeout_s: float) -> dict[str, tuple[Any, Any]]:
    return await BleakScanner.discover(timeout=timeout_s, return_adv=True)


def short_uuid(uuid: str) -> int | None:
    """The 16-bit form of a SIG base UUID (``0000181f-0000-1000-8000-00805f9b34fb``)."""
    text = str(uuid).lower()
    if len(text) == 36 and text.startswith("0000") and text.endswith(full_uuid(0)[8:]):
        return int(text[4:8], 16)
    return None


class BleakConnection:
    """A connected ``BleakClient`` with its discovered characteristics."""

    def __init__(self, client: Any, address: str, gone: asyncio.Event) -> None:
        self.address = address
        self._client = client
        self._gone = gone
        self._chars: set[tuple[int, int]] = set()
        for service in client.services:
            for char in service.characteristics:
                key = (short_uuid(service.uuid), short_uuid(char.uuid))
                if None not in key:
                    self._chars.add(key)  # type: ignore[arg-type]

    def has(self, service: int, characteristic: int) -> bool:
        return (service, characteristic) in self._chars

    async def _call(self, coro: Awaitable[Any]) -> Any:
        try:
            return await coro
        except (BleakError, OSError, EOFError) as exc:
            raise LinkError(f"GATT: {exc}") from exc

    async def read(self, service: int, characteristic: int) -> bytes:
        return bytes(await self._call(self._client.read_gatt_char(full_uuid(characteristic))))

    async def write(self, service: int, characteristic: int, value: bytes) -> None:
        await self._call(
            self._client.write_gatt_char(full_uuid(characteristic), value, response=True)
        )

    async def subscribe(self, service: int, characteristic: int, callback: Subscriber) -> None:
        def on_value(_char: Any, data: bytearray) -> None:
            callback(bytes(data))

        await self._call(self._client.start_notify(full_uuid(characteristic), on_value))

    async def disconnect(self) -> None:
        with contextlib.suppress(BleakError, OSError, EOFError):
            await self._client.disconnect()
        self._gone.set()

    async def wait_disconnected(self) -> None:
        await self._gone.wait()


class BleakLink:
    """:class:`~sensor_ingest.ble.link.GattLink` on bleak."""

    def __init__(
        self, *, discover: Discover = _discover, client_factory: Callable[..., Any] = BleakClient
    ) -> None:
        self._discover = discover
        self._client_factory = client_factory

    async def open(self) -> None:
        """bleak opens the adapter on first use; ``scan`` and ``connect`` report a missing one."""

    async def close(self) -> None:
        return None

    async def scan(self, timeout_s: float) -> list[Advertisement]:
        try:
            found = await self._discover(timeout_s)
        except (BleakError, OSError) as exc:
            raise NoAdapterError(f"{NO_ADAPTER} ({type(exc).__name__}: {exc})") from exc
        out = []
        for address, (device, adv) in found.items():
            services = tuple(
                s for s in (short_uuid(u) for u in adv.service_uuids or ()) if s is not None
            )
            out.append(
                Advertisement(address.upper(), adv.local_name or device.name, services, adv.rssi)
            )
        return out

    async def connect(self, address: str, timeout_s: float) -> BleakConnection:
        gone = asyncio.Event()
        client = self._client_factory(
            address, disconnected_callback=lambda _client: gone.set(), timeout=timeout_s
        )
        try:
            await client.connect()
        except FileNotFoundError as exc:
            raise NoAdapterError(NO_ADAPTER) from exc
        except (BleakError, OSError, TimeoutError, EOFError) as exc:
            raise LinkError(f"connect to {address}: {exc or type(exc).__name__}") from exc
        return BleakConnection(client, address, gone)
