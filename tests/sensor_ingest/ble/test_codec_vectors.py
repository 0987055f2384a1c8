"""Codec tests against the published byte strings (Nordic Android BLE library, nRF Toolbox)
and hand-made values for every flag and error path."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import pytest

from sensor_ingest.ble import cgm, hts, racp
from sensor_ingest.ble.crc import append_crc, crc16_mcrf4xx
from sensor_ingest.ble.errors import DecodeError
from sensor_ingest.ble.ieee11073 import (
    Special,
    decode_float,
    decode_sfloat,
    encode_float,
    encode_sfloat,
)

h = bytes.fromhex


def test_crc_check_value() -> None:
    assert crc16_mcrf4xx(b"123456789") == 0x6F91


# -- SFLOAT / FLOAT -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x07FF, Special.NAN),
        (0x0800, Special.NRES),
        (0x07FE, Special.POSITIVE_INFINITY),
        (0x0802, Special.NEGATIVE_INFINITY),
        (0x100C, 120.0),
        (0x0078, 120.0),
        (0xF019, 2.5),  # 25 x 10^-1
        (0x0FFF, -1.0),
        (0xE803, -2045 / 100),
    ],
)
def test_sfloat(raw: int, expected: float | Special) -> None:
    assert decode_sfloat(raw) == expected


def test_sfloat_vectors_from_the_issue_bytes() -> None:
    as_int = {"FF07": Special.NAN, "0008": Special.NRES, "FE07": Special.POSITIVE_INFINITY}
    as_int |= {"0208": Special.NEGATIVE_INFINITY}
    for text, special in as_int.items():
        assert decode_sfloat(int.from_bytes(h(text), "little")) is special
    with pytest.raises(DecodeError) as err:
        decode_sfloat(int.from_bytes(h("0108"), "little"), "cgm_measurement", "glucose")
    assert err.value.field == "glucose" and "reserved" in err.value.message


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (0x007FFFFF, Special.NAN),
        (0x00800000, Special.NRES),
        (0x007FFFFE, Special.POSITIVE_INFINITY),
        (0x00800002, Special.NEGATIVE_INFINITY),
        (0xFE000EB0, 37.6),
        (0xFF0003DA, 98.6),
        (0x01000005, 50.0),
    ],
)
def test_float(raw: int, expected: float | Special) -> None:
    assert decode_float(raw) == expected


def test_float_reserved() -> None:
    with pytest.raises(DecodeError, match="reserved FLOAT"):
        decode_float(0x00800001)


def test_encode_specials_and_overflow() -> None:
    for special in Special:
        assert decode_sfloat(encode_sfloat(special)) is special
        assert decode_float(encode_float(special)) is special
    assert decode_sfloat(encode_sfloat(123456.0)) == 123500.0  # loses digits, keeps magnitude
    with pytest.raises(ValueError, match="not finite"):
        encode_sfloat(float("nan"))
    with pytest.raises(ValueError, match="does not fit"):
        encode_sfloat(1e30)


# -- CGM Measurement ----------------------------------------------------------------------


def test_cgm_measurement_plain() -> None:
    (m,) = cgm.decode_measurements(h("06000C100600"), crc=False)
    assert m == cgm.CgmMeasurement(120.0, 6)


def test_cgm_measurement_all_fields_with_crc() -> None:
    data = h("0FE378001E0001020350006000ECAC")
    (m,) = cgm.decode_measurements(data, crc=True)
    assert m == cgm.CgmMeasurement(120.0, 30, 1, 2, 3, 80.0, 96.0)
    assert cgm.encode_measurement(m, crc=True) == data


def test_cgm_measurement_bad_crc() -> None:
    with pytest.raises(DecodeError) as err:
        cgm.decode_measurements(h("08000C100600586F"), crc=True)
    assert err.value.field == "e2e_crc" and "0x6F59" in err.value.message


def test_cgm_measurement_several_records() -> None:
    one = h("06000C100600")
    two = cgm.encode_measurement(cgm.CgmMeasurement(Special.NRES, 11, status=0x20), crc=False)
    got = cgm.decode_measurements(one + two, crc=False)
    assert [r.time_offset_min for r in got] == [6, 11]
    assert got[1].glucose_mgdl is Special.NRES and got[1].status == 0x20


_OPTIONAL = ("status", "cal_temp", "warning", "trend_mgdl_per_min", "quality_percent")


@pytest.mark.parametrize("present", list(itertools.product((False, True), repeat=len(_OPTIONAL))))
@pytest.mark.parametrize("crc", [False, True])
def test_cgm_measurement_every_flag_combination(present: tuple[bool, ...], crc: bool) -> None:
    values = {"status": 0x11, "cal_temp": 0x22, "warning": 0x33}
    values |= {"trend_mgdl_per_min": -1.5, "quality_percent": 87.0}
    fields = {name: values[name] for name, on in zip(_OPTIONAL, present, strict=True) if on}
    m = cgm.CgmMeasurement(97.0, 1234, **fields)
    data = cgm.encode_measurement(m, crc=crc)
    assert data[0] == len(data)
    assert cgm.decode_measurements(data, crc=crc) == [m]


@pytest.mark.parametrize(
    ("data", "crc", "field"),
    [
        (b"", False, "size"),
        (h("05000C1006"), False, "size"),  # size below the minimum
        (h("07000C100600"), False, "size"),  # size beyond the value
        (h("06040C100600"), False, "flags"),  # reserved flag bit
        (h("06800C100600"), False, "size"),  # status flagged, size without it
        (h("06000C100600"), True, "size"),  # CRC expected, size without it
        (h("0600FF070600"), False, None),  # NaN glucose is a value, not an error
        (h("060001080600"), False, "glucose"),  # reserved SFLOAT
    ],
)
def test_cgm_measurement_errors(data: bytes, crc: bool, field: str | None) -> None:
    if field is None:
        (m,) = cgm.decode_measurements(data, crc=crc)
        assert m.glucose_mgdl is Special.NAN
        return
    with pytest.raises(DecodeError) as err:
        cgm.decode_measurements(data, crc=crc)
    assert err.value.characteristic == "cgm_measurement" and err.value.field == field


# -- CGM Feature / Status / Session --------------------------------------------------------


def test_feature_round_trip_with_and_without_crc() -> None:
    with_crc = cgm.CgmFeature(cgm.Features.E2E_CRC | cgm.Features.TREND, 9, 5)
    data = cgm.encode_feature(with_crc)
    assert cgm.decode_feature(data) == with_crc and with_crc.crc
    plain = cgm.CgmFeature(cgm.Features.QUALITY, 9, 15)
    data = cgm.encode_feature(plain)
    assert data[-2:] == b"\xff\xff" and cgm.decode_feature(data) == plain and not plain.crc


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (h("000002" + "59" + "FFFF"), "features"),  # bit 17 reserved
        (h("000000" + "59" + "0000"), "e2e_crc"),  # no CRC support but not 0xFFFF
        (h("001000" + "59" + "0000"), "e2e_crc"),  # CRC support, wrong CRC
        (h("0000005900"), "e2e_crc"),  # short
        (h("000000" + "59" + "FFFF00"), "length"),  # trailing byte
    ],
)
def test_feature_errors(data: bytes, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        cgm.decode_feature(data)
    assert err.value.field == field


def test_status_round_trip_and_errors() -> None:
    status = cgm.CgmStatus(300, 1, 2, 4)
    for crc in (False, True):
        assert cgm.decode_status(cgm.encode_status(status, crc=crc), crc=crc) == status
    broken = bytearray(cgm.encode_status(status, crc=True))
    broken[0] ^= 1
    with pytest.raises(DecodeError, match="e2e_crc"):
        cgm.decode_status(bytes(broken), crc=True)
    with pytest.raises(DecodeError, match="status"):
        cgm.decode_status(h("2C0101"), crc=False)


def test_session_start_time_vector() -> None:
    s = cgm.decode_session_start(h("E20704180D08180804E0C2"), crc=True)
    assert s.local == datetime(2018, 4, 24, 13, 8, 24)
    assert s.time_zone_15min == 8 and s.dst_code == 4
    assert s.utc == datetime(2018, 4, 24, 10, 8, 24, tzinfo=UTC)  # UTC+2 zone, +1 h DST
    assert cgm.encode_session_start(s, crc=True) == h("E20704180D08180804E0C2")


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (h("E20704180D08180804E0C3"), "e2e_crc"),
        (h("E20704180D081808"), "dst_offset"),
        (h("E20704180D08188004"), "time_zone"),  # -128: unknown zone
        (h("E20704180D08183904"), "time_zone"),  # 57: out of range
        (h("E20704180D08180803"), "dst_offset"),  # code 3 reserved
        (h("E2070D180D08180804"), "date_time"),  # month 13
        (h("0000000000000000"), "date_time"),  # all unknown
    ],
)
def test_session_start_time_errors(data: bytes, field: str) -> None:
    crc = field == "e2e_crc"
    with pytest.raises(DecodeError) as err:
        cgm.decode_session_start(data, crc=crc)
    assert err.value.field == field


def test_session_start_for_a_zone() -> None:
    start = datetime(2026, 1, 5, 23, 30, tzinfo=UTC)
    s = cgm.session_start_for(start, -300)  # UTC-5
    assert s.local == datetime(2026, 1, 5, 18, 30) and s.utc == start


def test_run_time() -> None:
    for crc in (False, True):
        assert cgm.decode_run_time(cgm.encode_run_time(336, crc=crc), crc=crc) == 336
    with pytest.raises(DecodeError, match="run_time"):
        cgm.decode_run_time(b"\x01", crc=False)


@pytest.mark.parametrize(
    "message",
    [
        cgm.SocpMessage(cgm.SocpOp.SET_COMMUNICATION_INTERVAL, interval_min=5),
        cgm.SocpMessage(cgm.SocpOp.GET_COMMUNICATION_INTERVAL),
        cgm.SocpMessage(cgm.SocpOp.COMMUNICATION_INTERVAL_RESPONSE, interval_min=1),
        cgm.SocpMessage(cgm.SocpOp.START_SESSION),
        cgm.SocpMessage(cgm.SocpOp.STOP_SESSION),
        cgm.SocpMessage(
            cgm.SocpOp.RESPONSE_CODE,
            request=cgm.SocpOp.START_SESSION,
            result=cgm.SocpResult.SUCCESS,
        ),
    ],
)
@pytest.mark.parametrize("crc", [False, True])
def test_socp_round_trip(message: cgm.SocpMessage, crc: bool) -> None:
    assert cgm.decode_socp(cgm.encode_socp(message, crc=crc), crc=crc) == message


def test_socp_bytes_and_errors() -> None:
    assert cgm.encode_socp(cgm.SocpMessage(cgm.SocpOp.START_SESSION), crc=False) == h("1A")
    with pytest.raises(DecodeError) as err:
        cgm.decode_socp(h("FF"), crc=False)
    assert err.value.field == "op_code"
    with pytest.raises(DecodeError) as err:
        cgm.decode_socp(h("1C1A09"), crc=False)
    assert err.value.field == "result"
    with pytest.raises(DecodeError, match="e2e_crc"):
        cgm.decode_socp(append_crc(h("1A"))[:-1] + b"\x00", crc=True)


# -- RACP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ("0101", racp.report_all()),
        ("0103011E00", racp.report_from(30)),
        ("0401", racp.RacpMessage(racp.RacpOp.REPORT_NUMBER, racp.RacpOperator.ALL)),
        ("0300", racp.RacpMessage(racp.RacpOp.ABORT)),
        ("05000201", racp.RacpMessage(racp.RacpOp.NUMBER_RESPONSE, count=258)),
        (
            "06000101",
            racp.RacpMessage(
                racp.RacpOp.RESPONSE_CODE,
                request=racp.RacpOp.REPORT_RECORDS,
                result=racp.RacpResult.SUCCESS,
            ),
        ),
        (
            "06000106",
            racp.RacpMessage(
                racp.RacpOp.RESPONSE_CODE,
                request=racp.RacpOp.REPORT_RECORDS,
                result=racp.RacpResult.NO_RECORDS_FOUND,
            ),
        ),
    ],
)
def test_racp_vectors(data: str, message: racp.RacpMessage) -> None:
    assert racp.decode_racp(h(data)) == message
    assert racp.encode_racp(message) == h(data)


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("", "op_code"),
        ("0901", "op_code"),
        ("0107", "operator"),
        ("0103021E00", "filter_type"),
        ("0103011E", "operand"),
        ("0500", "operand"),
        ("060001", "result"),
        ("06000F01", "request_op_code"),
        ("010100", "length"),
    ],
)
def test_racp_errors(data: str, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        racp.decode_racp(h(data))
    assert err.value.field == field


# -- Health Thermometer -------------------------------------------------------------------


def test_temperature_vector_celsius_with_timestamp_and_type() -> None:
    m = hts.decode_temperature(h("06B00E00FEDC070C050B321B04"))
    assert m.celsius == pytest.approx(37.60)
    assert m.timestamp == datetime(2012, 12, 5, 11, 50, 27)
    assert m.kind is hts.TemperatureType.FINGER and not m.fahrenheit_sent
    assert hts.body_site(m.kind) is None  # no known skin-to-core offset for a finger


def test_temperature_vector_truncated() -> None:
    with pytest.raises(DecodeError) as err:
        hts.decode_temperature(h("06B00E00FEDC070C050B321B"))
    assert err.value.field == "temperature_type"


def test_temperature_vector_fahrenheit() -> None:
    m = hts.decode_temperature(h("01DA0300FF"))
    assert m.fahrenheit_sent and m.celsius == pytest.approx(37.0)


@pytest.mark.parametrize("flags", range(8))
def test_temperature_every_flag_combination(flags: int) -> None:
    m = hts.TemperatureMeasurement(
        celsius=38.25,
        fahrenheit_sent=bool(flags & 1),
        timestamp=datetime(2026, 11, 30, 8, 15, 0) if flags & 2 else None,
        kind=hts.TemperatureType.ARMPIT if flags & 4 else None,
    )
    data = hts.encode_temperature(m)
    assert data[0] == flags
    got = hts.decode_temperature(data, hts.INTERMEDIATE_TEMPERATURE_NAME)
    assert got.celsius == pytest.approx(38.25, abs=0.01)
    assert (got.fahrenheit_sent, got.timestamp, got.kind) == (
        m.fahrenheit_sent,
        m.timestamp,
        m.kind,
    )


def test_temperature_special_value_in_fahrenheit_stays_special() -> None:
    data = hts.encode_temperature(hts.TemperatureMeasurement(Special.NRES, fahrenheit_sent=True))
    assert hts.decode_temperature(data).celsius is Special.NRES


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ("08B00E00FE", "flags"),
        ("00B00E00", "temperature"),
        ("00010080000A", "temperature"),  # reserved FLOAT, then junk
        ("04B00E00FE00", "temperature_type"),  # type 0 reserved
        ("04B00E00FE0A", "temperature_type"),  # type 10 reserved
        ("02B00E00FEDC070C200B321B", "timestamp"),  # day 32
        ("00B00E00FE00", "length"),
    ],
)
def test_temperature_errors(data: str, field: str) -> None:
    with pytest.raises(DecodeError) as err:
        hts.decode_temperature(h(data))
    assert err.value.field == field


def test_temperature_type_and_interval() -> None:
    for kind in hts.TemperatureType:
        assert hts.decode_temperature_type(hts.encode_temperature_type(kind)) is kind
    assert hts.body_site(hts.TemperatureType.ARMPIT) == "axilla"
    assert hts.body_site(hts.TemperatureType.RECTUM) == "core"
    assert hts.body_site(None) is None
    with pytest.raises(DecodeError, match="temperature_type"):
        hts.decode_temperature_type(b"\x00")
    assert hts.decode_interval(hts.encode_interval(60)) == 60
    with pytest.raises(DecodeError, match="interval"):
        hts.decode_interval(b"\x3c")
