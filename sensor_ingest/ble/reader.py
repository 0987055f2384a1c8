"""A little-endian cursor over a characteristic value that fails with a named field.

Every codec reads through this so that a short value always becomes a
:class:`~sensor_ingest.ble.errors.DecodeError` naming the field that was cut off.
"""

from __future__ import annotations

import enum
from typing import TypeVar

from sensor_ingest.ble.errors import DecodeError

E = TypeVar("E", bound=enum.IntEnum)


class Reader:
    """Reads unsigned/signed little-endian integers from ``data`` in order."""

    def __init__(self, characteristic: str, data: bytes) -> None:
        self.characteristic = characteristic
        self.data = bytes(data)
        self.pos = 0

    def error(self, field: str, message: str) -> DecodeError:
        return DecodeError(self.characteristic, field, message)

    def take(self, n: int, field: str) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise self.error(field, f"needs {n} byte(s) at offset {self.pos}, value is short")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def uint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "little")

    def sint(self, n: int, field: str) -> int:
        return int.from_bytes(self.take(n, field), "little", signed=True)

    def enum(self, cls: type[E], field: str) -> E:
        """One octet that must be a member of ``cls``."""
        raw = self.uint(1, field)
        try:
            return cls(raw)
        except ValueError:
            raise self.error(field, f"unknown or reserved value 0x{raw:02X}") from None

    @property
    def remaining(self) -> int:
        return len(self.data) - self.pos

    def done(self, field: str = "length") -> None:
        """Fail if bytes are left over."""
        if self.remaining:
            raise self.error(field, f"{self.remaining} unexpected trailing byte(s)")
