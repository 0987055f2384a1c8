"""Codecs of the Continuous Glucose Monitoring Service (0x181F, CGMS 1.0.1).

Pure functions from characteristic values to typed records and back. A CGM Measurement
notification carries one or more records, each prefixed by its size; glucose is an SFLOAT
in mg/dL at a time offset in minutes since the session started. When the sensor's CGM
Feature says E2E-CRC is supported, every value ends with a CRC-16/MCRF4XX of the bytes
before it. Bad bytes raise :class:`~sensor_ingest.ble.errors.DecodeError` naming the field.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sensor_ingest.ble.crc import append_crc, check_crc
from sensor_ingest.ble.datetime_codec import encode_date_time, read_date_time
from sensor_ingest.ble.errors import DecodeError
from sensor_ingest.ble.ieee11073 import Medical, decode_sfloat, encode_sfloat
from sensor_ingest.ble.reader import Reader

MEASUREMENT = "cgm_measurement"
FEATURE = "cgm_feature"
STATUS = "cgm_status"
SESSION_START = "session_start_time"
RUN_TIME = "session_run_time"
SOCP = "cgm_specific_ops_control_point"


class MeasurementFlags(enum.IntFlag):
    TREND = 0x01
    QUALITY = 0x02
    WARNING_OCTET = 0x20
    CAL_TEMP_OCTET = 0x40
    STATUS_OCTET = 0x80


_RESERVED_MEASUREMENT_FLAGS = 0x1C


class Features(enum.IntFlag):
    """CGM Feature bits (24-bit field)."""

    CALIBRATION = 1 << 0
    PATIENT_HIGH_LOW_ALERTS = 1 << 1
    HYPO_ALERTS = 1 << 2
    HYPER_ALERTS = 1 << 3
    RATE_ALERTS = 1 << 4
    DEVICE_SPECIFIC_ALERT = 1 << 5
    SENSOR_MALFUNCTION = 1 << 6
    SENSOR_TEMPERATURE = 1 << 7
    SENSOR_RESULT_HIGH_LOW = 1 << 8
    LOW_BATTERY = 1 << 9
    SENSOR_TYPE_ERROR = 1 << 10
    GENERAL_DEVICE_FAULT = 1 << 11
    E2E_CRC = 1 << 12
    MULTIPLE_BOND = 1 << 13
    MULTIPLE_SESSIONS = 1 << 14
    TREND = 1 << 15
    QUALITY = 1 << 16


@dataclass(frozen=True, slots=True)
class CgmMeasurement:
    """One record: glucose (mg/dL) ``time_offset_min`` minutes after the session start."""

    glucose_mgdl: Medical
    time_offset_min: int
    status: int | None = None
    cal_temp: int | None = None
    warning: int | None = None
    trend_mgdl_per_min: Medical | None = None
    quality_percent: Medical | None = None


def _record_length(flags: int, crc: bool) -> int:
    octets = sum(
        1
        for bit in (
            MeasurementFlags.STATUS_OCTET,
            MeasurementFlags.CAL_TEMP_OCTET,
            MeasurementFlags.WARNING_OCTET,
        )
        if flags & bit
    )
    sfloats = sum(1 for bit in (MeasurementFlags.TREND, MeasurementFlags.QUALITY) if flags & bit)
    return 6 + octets + 2 * sfloats + (2 if crc else 0)


def _decode_record(record: bytes, crc: bool) -> CgmMeasurement:
    r = Reader(MEASUREMENT, record)
    size, flags = r.uint(1, "size"), r.uint(1, "flags")
    if flags & _RESERVED_MEASUREMENT_FLAGS:
        raise r.error("flags", f"reserved bits set in 0x{flags:02X}")
    expected = _record_length(flags, crc)
    if size != expected:
        raise r.error("size", f"size {size} disagrees with {expected} implied by the flags")
    glucose = decode_sfloat(r.uint(2, "glucose"), MEASUREMENT, "glucose")
    offset = r.uint(2, "time_offset")
    status = r.uint(1, "status") if flags & MeasurementFlags.STATUS_OCTET else None
    cal_temp = r.uint(1, "cal_temp") if flags & MeasurementFlags.CAL_TEMP_OCTET else None
    warning = r.uint(1, "warning") if flags & MeasurementFlags.WARNING_OCTET else None
    trend = (
        decode_sfloat(r.uint(2, "trend"), MEASUREMENT, "trend")
        if flags & MeasurementFlags.TREND
        else None
    )
    quality = (
        decode_sfloat(r.uint(2, "quality"), MEASUREMENT, "quality")
        if flags & MeasurementFlags.QUALITY
        else None
    )
    if crc:
        check_crc(MEASUREMENT, record[: r.pos], r.uint(2, "e2e_crc"))
    return CgmMeasurement(glucose, offset, status, cal_temp, warning, trend, quality)


def decode_measurements(data: bytes, *, crc: bool) -> list[CgmMeasurement]:
    """All records of one CGM Measurement value; ``crc`` when the sensor's features say
    E2E-CRC is supported."""
    data = bytes(data)
    if not data:
        raise DecodeError(MEASUREMENT, "size", "empty value")
    records = []
    pos = 0
    while pos < len(data):
        size = data[pos]
        if size < 6 or pos + size > len(data):
            raise DecodeError(
                MEASUREMENT, "size", f"size {size} at offset {pos} does not fit the value"
            )
        records.append(_decode_record(data[pos : pos + size], crc))
        pos += size
    return records


def encode_measurement(m: CgmMeasurement, *, crc: bool) -> bytes:
    """One record (concatenate several for a multi-record notification)."""
    flags = 0
    tail = b""
    for value, bit in (
        (m.status, MeasurementFlags.STATUS_OCTET),
        (m.cal_temp, MeasurementFlags.CAL_TEMP_OCTET),
        (m.warning, MeasurementFlags.WARNING_OCTET),
    ):
        if value is not None:
            flags |= bit
            tail += bytes((value,))
    for medical, bit in (
        (m.trend_mgdl_per_min, MeasurementFlags.TREND),
        (m.quality_percent, MeasurementFlags.QUALITY),
    ):
        if medical is not None:
            flags |= bit
            tail += encode_sfloat(medical, 1).to_bytes(2, "little")
    size = _record_length(flags, crc)
    body = (
        bytes((size, flags))
        + encode_sfloat(m.glucose_mgdl).to_bytes(2, "little")
        + m.time_offset_min.to_bytes(2, "little")
        + tail
    )
    return append_crc(body) if crc else body


# -- CGM Feature -------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgmFeature:
    features: Features
    sample_type: int
    """Low nibble of the type/location octet: 9 is interstitial fluid."""
    sample_location: int
    """High nibble: 5 is subcutaneous tissue, 15 not available."""

    @property
    def crc(self) -> bool:
        return bool(self.features & Features.E2E_CRC)


def decode_feature(data: bytes) -> CgmFeature:
    """The CGM Feature value; its CRC field is checked when E2E-CRC is supported, and must
    be 0xFFFF otherwise."""
    r = Reader(FEATURE, data)
    bits = r.uint(3, "features")
    if bits >> 17:
        raise r.error("features", f"reserved feature bits set in 0x{bits:06X}")
    type_location = r.uint(1, "type_location")
    sent = r.uint(2, "e2e_crc")
    r.done()
    features = Features(bits)
    if features & Features.E2E_CRC:
        check_crc(FEATURE, bytes(data[:4]), sent)
    elif sent != 0xFFFF:
        raise r.error("e2e_crc", f"must be 0xFFFF without E2E-CRC support, got 0x{sent:04X}")
    return CgmFeature(features, type_location & 0x0F, type_location >> 4)


def encode_feature(f: CgmFeature) -> bytes:
    body = int(f.features).to_bytes(3, "little") + bytes(
        (f.sample_type & 0x0F | f.sample_location << 4,)
    )
    return append_crc(body) if f.crc else body + b"\xff\xff"


# -- CGM Status ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CgmStatus:
    time_offset_min: int
    status: int
    cal_temp: int
    warning: int


def _end(r: Reader, crc: bool) -> None:
    """Check the trailing CRC (when supported) and that nothing else follows."""
    if crc:
        covered = r.data[: r.pos]
        check_crc(r.characteristic, covered, r.uint(2, "e2e_crc"))
    r.done()


def decode_status(data: bytes, *, crc: bool) -> CgmStatus:
    r = Reader(STATUS, data)
    offset = r.uint(2, "time_offset")
    status, cal_temp, warning = r.take(3, "status")
    _end(r, crc)
    return CgmStatus(offset, status, cal_temp, warning)


def _tail(body: bytes, crc: bool) -> bytes:
    return append_crc(body) if crc else body


def encode_status(s: CgmStatus, *, crc: bool) -> bytes:
    body = s.time_offset_min.to_bytes(2, "little") + bytes((s.status, s.cal_temp, s.warning))
    return _tail(body, crc)


# -- Session Start Time / Run Time ---------------------------------------------------------

TIME_ZONE_UNKNOWN = -128
DST_UNKNOWN = 255
DST_OFFSET_MIN = {0: 0, 2: 30, 4: 60, 8: 120}
"""DST Offset codes (Bluetooth Assigned Numbers) to minutes."""


@dataclass(frozen=True, slots=True)
class SessionStartTime:
    """The sensor's local date-time when the session started, its time zone (in 15-minute
    steps from UTC, standard time) and its daylight-saving offset code."""

    local: datetime
    time_zone_15min: int
    dst_code: int

    @property
    def utc_offset(self) -> timedelta:
        return timedelta(minutes=15 * self.time_zone_15min + DST_OFFSET_MIN[self.dst_code])

    @property
    def utc(self) -> datetime:
        """The session start in UTC: local time minus zone and DST offsets."""
        return (self.local - self.utc_offset).replace(tzinfo=UTC)


def decode_session_start(data: bytes, *, crc: bool) -> SessionStartTime:
    r = Reader(SESSION_START, data)
    local = read_date_time(r, "date_time")
    zone = r.sint(1, "time_zone")
    if not -48 <= zone <= 56:
        raise r.error("time_zone", f"{zone} is unknown or out of range (-48..56)")
    dst = r.uint(1, "dst_offset")
    if dst not in DST_OFFSET_MIN:
        raise r.error("dst_offset", f"code {dst} is unknown or reserved")
    _end(r, crc)
    return SessionStartTime(local, zone, dst)


def encode_session_start(s: SessionStartTime, *, crc: bool) -> bytes:
    body = encode_date_time(s.local) + s.time_zone_15min.to_bytes(1, "little", signed=True)
    return _tail(body + bytes((s.dst_code,)), crc)


def session_start_for(utc: datetime, utc_offset_min: int) -> SessionStartTime:
    """The Session Start Time a sensor in a zone ``utc_offset_min`` from UTC (standard time,
    a multiple of 15) reports for a session that started at ``utc``."""
    local = utc.astimezone(UTC).replace(tzinfo=None) + timedelta(minutes=utc_offset_min)
    return SessionStartTime(local.replace(microsecond=0), utc_offset_min // 15, 0)


def decode_run_time(data: bytes, *, crc: bool) -> int:
    """Session Run Time: the expected session length in hours."""
    r = Reader(RUN_TIME, data)
    hours = r.uint(2, "run_time")
    _end(r, crc)
    return hours


def encode_run_time(hours: int, *, crc: bool) -> bytes:
    return _tail(hours.to_bytes(2, "little"), crc)


# -- CGM Specific Ops Control Point --------------------------------------------------------


class SocpOp(enum.IntEnum):
    SET_COMMUNICATION_INTERVAL = 0x01
    GET_COMMUNICATION_INTERVAL = 0x02
    COMMUNICATION_INTERVAL_RESPONSE = 0x03
    START_SESSION = 0x1A
    STOP_SESSION = 0x1B
    RESPONSE_CODE = 0x1C


class SocpResult(enum.IntEnum):
    SUCCESS = 0x01
    OP_CODE_NOT_SUPPORTED = 0x02
    INVALID_OPERAND = 0x03
    PROCEDURE_NOT_COMPLETED = 0x04
    PARAMETER_OUT_OF_RANGE = 0x05


@dataclass(frozen=True, slots=True)
class SocpMessage:
    """A request or response on the CGM Specific Ops Control Point.

    ``interval_min`` for (set / response of) the communication interval; ``request`` and
    ``result`` for a response code.
    """

    op: SocpOp
    interval_min: int | None = None
    request: SocpOp | None = None
    result: SocpResult | None = None


def decode_socp(data: bytes, *, crc: bool) -> SocpMessage:
    r = Reader(SOCP, data)
    op = r.enum(SocpOp, "op_code")
    message = SocpMessage(op)
    if op in (SocpOp.SET_COMMUNICATION_INTERVAL, SocpOp.COMMUNICATION_INTERVAL_RESPONSE):
        message = SocpMessage(op, interval_min=r.uint(1, "operand"))
    elif op is SocpOp.RESPONSE_CODE:
        request = r.enum(SocpOp, "request_op_code")
        result = r.enum(SocpResult, "result")
        message = SocpMessage(op, request=request, result=result)
    _end(r, crc)
    return message


def encode_socp(m: SocpMessage, *, crc: bool) -> bytes:
    body = bytes((m.op,))
    if m.interval_min is not None:
        body += bytes((m.interval_min,))
    if m.request is not None and m.result is not None:
        body += bytes((m.request, m.result))
    return _tail(body, crc)
