"""E2E-CRC of the CGM service: CRC-16/MCRF4XX (poly 0x1021 reflected = 0x8408, seed 0xFFFF,
no final XOR), sent little-endian after the bytes it covers."""

from __future__ import annotations

from sensor_ingest.ble.errors import DecodeError


def _table() -> tuple[int, ...]:
    out = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
        out.append(crc)
    return tuple(out)


_TABLE = _table()


def crc16_mcrf4xx(data: bytes, seed: int = 0xFFFF) -> int:
    """The CRC of ``data`` (check value of ``b"123456789"``: 0x6F91)."""
    crc = seed
    for byte in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ byte) & 0xFF]
    return crc


def append_crc(data: bytes) -> bytes:
    """``data`` followed by its CRC."""
    return data + crc16_mcrf4xx(data).to_bytes(2, "little")


def check_crc(characteristic: str, covered: bytes, sent: int) -> None:
    """Raise a decode error on field ``e2e_crc`` unless ``sent`` is the CRC of ``covered``."""
    expected = crc16_mcrf4xx(covered)
    if sent != expected:
        raise DecodeError(
            characteristic, "e2e_crc", f"CRC 0x{sent:04X} does not match 0x{expected:04X}"
        )
