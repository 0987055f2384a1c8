"""The Bluetooth Date Time field (7 octets: year, month, day, hours, minutes, seconds), used by
the thermometer's time stamp and the CGM Session Start Time. Zero means "unknown" in the
spec; a reading with an unknown date cannot be placed in time, so it is a decode error."""

from __future__ import annotations

from datetime import datetime

from sensor_ingest.ble.errors import DecodeError
from sensor_ingest.ble.reader import Reader

DATE_TIME_SIZE = 7


def read_date_time(reader: Reader, field: str) -> datetime:
    """A naive ``datetime`` (the sensor's local time) from the next 7 octets."""
    year = reader.uint(2, field)
    month, day, hour, minute, second = reader.take(5, field)
    try:
        return datetime(year, month, day, hour, minute, second)
    except ValueError as exc:
        raise DecodeError(reader.characteristic, field, f"not a valid date-time: {exc}") from None


def encode_date_time(when: datetime) -> bytes:
    """The 7 octets of ``when`` (naive; seconds truncated)."""
    return when.year.to_bytes(2, "little") + bytes(
        (when.month, when.day, when.hour, when.minute, when.second)
    )
