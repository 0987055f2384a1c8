"""Codecs of the Health Thermometer Service (0x1809, HTS 1.0).

Temperature Measurement (indicated) and Intermediate Temperature share one format: flags
(bit 0 °F, bit 1 time stamp present, bit 2 temperature type present), an IEEE-11073 FLOAT,
then the optional fields. °F is converted to °C here so nothing downstream sees °F. The
Temperature Type says where on the body the thermometer sits; :data:`BODY_SITE` maps it to
the sites whose skin-to-core offsets ``algorithms.temperature`` knows.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime

from algorithms.temperature import BodySite
from sensor_ingest.ble.datetime_codec import encode_date_time, read_date_time
from sensor_ingest.ble.ieee11073 import Medical, Special, decode_float, encode_float
from sensor_ingest.ble.reader import Reader

MEASUREMENT = "temperature_measurement"
INTERMEDIATE_TEMPERATURE_NAME = "intermediate_temperature"
TYPE = "temperature_type"
INTERVAL = "measurement_interval"


class TemperatureFlags(enum.IntFlag):
    FAHRENHEIT = 0x01
    TIMESTAMP = 0x02
    TYPE = 0x04


class TemperatureType(enum.IntEnum):
    ARMPIT = 1
    BODY = 2
    EAR = 3
    FINGER = 4
    GASTROINTESTINAL = 5
    MOUTH = 6
    RECTUM = 7
    TOE = 8
    TYMPANUM = 9


BODY_SITE: dict[TemperatureType, BodySite] = {
    TemperatureType.ARMPIT: BodySite.AXILLA,
    TemperatureType.EAR: BodySite.EAR,
    TemperatureType.TYMPANUM: BodySite.EAR,
    TemperatureType.GASTROINTESTINAL: BodySite.CORE,
    TemperatureType.RECTUM: BodySite.CORE,
}
"""Temperature types with a known skin-to-core offset; the others (body in general, finger,
mouth, toe) have none in ``algorithms.temperature`` and are left to the device's default."""


def body_site(kind: TemperatureType | None) -> BodySite | None:
    return None if kind is None else BODY_SITE.get(kind)


@dataclass(frozen=True, slots=True)
class TemperatureMeasurement:
    """A temperature in °C (converted if the sensor sent °F), with what the sensor said."""

    celsius: Medical
    fahrenheit_sent: bool = False
    timestamp: datetime | None = None
    """The sensor's local time of the measurement, if sent."""
    kind: TemperatureType | None = None


def fahrenheit_to_celsius(f: float) -> float:
    return (f - 32.0) * 5.0 / 9.0


def celsius_to_fahrenheit(c: float) -> float:
    return c * 9.0 / 5.0 + 32.0


def decode_temperature(data: bytes, characteristic: str = MEASUREMENT) -> TemperatureMeasurement:
    """Temperature Measurement (0x2A1C) or Intermediate Temperature (0x2A1E)."""
    r = Reader(characteristic, data)
    flags = r.uint(1, "flags")
    if flags & 0xF8:
        raise r.error("flags", f"reserved bits set in 0x{flags:02X}")
    value = decode_float(r.uint(4, "temperature"), characteristic, "temperature")
    fahrenheit = bool(flags & TemperatureFlags.FAHRENHEIT)
    if fahrenheit and isinstance(value, float):
        value = fahrenheit_to_celsius(value)
    stamp = read_date_time(r, "timestamp") if flags & TemperatureFlags.TIMESTAMP else None
    kind = r.enum(TemperatureType, "temperature_type") if flags & TemperatureFlags.TYPE else None
    r.done()
    return TemperatureMeasurement(value, fahrenheit, stamp, kind)


def encode_temperature(m: TemperatureMeasurement) -> bytes:
    """The value a thermometer sends; in °F (2 decimals) when ``fahrenheit_sent``."""
    flags = 0
    value: Medical = m.celsius
    if m.fahrenheit_sent:
        flags |= TemperatureFlags.FAHRENHEIT
        if not isinstance(value, Special):
            value = celsius_to_fahrenheit(value)
    tail = b""
    if m.timestamp is not None:
        flags |= TemperatureFlags.TIMESTAMP
        tail += encode_date_time(m.timestamp)
    if m.kind is not None:
        flags |= TemperatureFlags.TYPE
        tail += bytes((m.kind,))
    return bytes((flags,)) + encode_float(value, 2).to_bytes(4, "little") + tail


def decode_temperature_type(data: bytes) -> TemperatureType:
    r = Reader(TYPE, data)
    kind = r.enum(TemperatureType, "temperature_type")
    r.done()
    return kind


def encode_temperature_type(kind: TemperatureType) -> bytes:
    return bytes((kind,))


def decode_interval(data: bytes) -> int:
    """Measurement Interval in seconds (0: no periodic measurement)."""
    r = Reader(INTERVAL, data)
    seconds = r.uint(2, "interval")
    r.done()
    return seconds


def encode_interval(seconds: int) -> bytes:
    return seconds.to_bytes(2, "little")
