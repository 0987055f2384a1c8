"""The GATT link interface the gateway core is written against.

Small on purpose: scan, connect, and on a connection read, write, subscribe and disconnect,
addressed by 16-bit SIG UUIDs. The core never imports a Bluetooth stack; ``bleak_link``
(radios) and ``bumble_link`` (virtual controllers) implement this, and tests can too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

Subscriber = Callable[[bytes], None]


class LinkError(Exception):
    """The link failed (no adapter, connect timeout, lost connection, GATT error)."""


class NoAdapterError(LinkError):
    """No Bluetooth adapter (or HCI transport) is available on this machine."""


@dataclass(frozen=True, slots=True)
class Advertisement:
    """A sensor seen while scanning."""

    address: str
    name: str | None
    services: tuple[int, ...]
    """16-bit service UUIDs advertised (0x181F CGM, 0x1809 thermometer, ...)."""
    rssi: int | None = None


class GattConnection(Protocol):
    """One connected peripheral; characteristics are addressed by (service, characteristic)."""

    address: str

    def has(self, service: int, characteristic: int) -> bool:
        """Whether discovery found the characteristic."""
        ...

    async def read(self, service: int, characteristic: int) -> bytes: ...

    async def write(self, service: int, characteristic: int, value: bytes) -> None:
        """Write with response."""
        ...

    async def subscribe(self, service: int, characteristic: int, callback: Subscriber) -> None:
        """Enable notifications or indications (whichever the characteristic offers)."""
        ...

    async def disconnect(self) -> None: ...

    async def wait_disconnected(self) -> None:
        """Return when the link is gone (the peer left, or ``disconnect``)."""
        ...


class GattLink(Protocol):
    """A Bluetooth adapter (radio or virtual controller)."""

    async def open(self) -> None:
        """Power on; raises :class:`NoAdapterError` when there is none."""
        ...

    async def close(self) -> None: ...

    async def scan(self, timeout_s: float) -> list[Advertisement]: ...

    async def connect(self, address: str, timeout_s: float) -> GattConnection:
        """Connect, negotiate a larger ATT MTU where the stack lets us, discover services."""
        ...
