"""Property tests of the codecs: encode → decode gives back the record, and arbitrary bytes
give a record or a DecodeError, never another exception."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sensor_ingest.ble import cgm, hts, racp
from sensor_ingest.ble.errors import DecodeError
from sensor_ingest.ble.ieee11073 import (
    FLOAT,
    SFLOAT,
    Special,
    decode_float,
    decode_sfloat,
    encode_parts,
)

specials = st.sampled_from(list(Special))
sfloat_values = st.one_of(
    specials,
    st.builds(
        lambda m, e: m * 10.0**e if e >= 0 else m / 10**-e,
        st.integers(-2045, 2045),
        st.integers(-1, 1),
    ),
)
octet = st.integers(0, 255)
date_times = st.datetimes(min_value=datetime(1582, 1, 1), max_value=datetime(9999, 12, 31)).map(
    lambda d: d.replace(microsecond=0)
)


@given(st.integers(-2045, 2045), st.integers(-8, 7))
def test_sfloat_parts_round_trip(mantissa: int, exponent: int) -> None:
    value = decode_sfloat(encode_parts(SFLOAT, mantissa, exponent))
    expected = mantissa * 10**exponent if exponent >= 0 else mantissa / 10**-exponent
    assert value == pytest.approx(expected)


@given(st.integers(-(2**23) + 3, 2**23 - 3), st.integers(-128, 127))
def test_float_parts_round_trip(mantissa: int, exponent: int) -> None:
    value = decode_float(encode_parts(FLOAT, mantissa, exponent))
    assert isinstance(value, float)
    expected = mantissa * 10.0**exponent
    assert value == pytest.approx(expected, rel=1e-12)


@given(
    st.builds(
        cgm.CgmMeasurement,
        glucose_mgdl=st.one_of(specials, st.integers(0, 2045).map(float)),
        time_offset_min=st.integers(0, 0xFFFF),
        status=st.none() | octet,
        cal_temp=st.none() | octet,
        warning=st.none() | octet,
        trend_mgdl_per_min=st.none() | sfloat_values,
        quality_percent=st.none() | sfloat_values,
    ),
    st.booleans(),
)
def test_measurement_round_trip(m: cgm.CgmMeasurement, crc: bool) -> None:
    (got,) = cgm.decode_measurements(cgm.encode_measurement(m, crc=crc), crc=crc)
    assert got.glucose_mgdl == m.glucose_mgdl and got.time_offset_min == m.time_offset_min
    assert (got.status, got.cal_temp, got.warning) == (m.status, m.cal_temp, m.warning)
    for sent, back in ((m.trend_mgdl_per_min, got.trend_mgdl_per_min),):
        _same_medical(sent, back)
    _same_medical(m.quality_percent, got.quality_percent)


def _same_medical(sent: float | Special | None, back: float | Special | None) -> None:
    if isinstance(sent, float):
        assert back == pytest.approx(sent)
    else:
        assert back is sent


@given(
    st.builds(
        cgm.CgmFeature,
        features=st.integers(0, (1 << 17) - 1).map(cgm.Features),
        sample_type=st.integers(0, 15),
        sample_location=st.integers(0, 15),
    )
)
def test_feature_round_trip(f: cgm.CgmFeature) -> None:
    assert cgm.decode_feature(cgm.encode_feature(f)) == f


@given(
    st.builds(
        cgm.SessionStartTime,
        local=date_times,
        time_zone_15min=st.integers(-48, 56),
        dst_code=st.sampled_from(sorted(cgm.DST_OFFSET_MIN)),
    ),
    st.booleans(),
)
def test_session_start_round_trip(s: cgm.SessionStartTime, crc: bool) -> None:
    assert cgm.decode_session_start(cgm.encode_session_start(s, crc=crc), crc=crc) == s


@given(
    st.builds(cgm.CgmStatus, st.integers(0, 0xFFFF), octet, octet, octet),
    st.booleans(),
)
def test_status_round_trip(s: cgm.CgmStatus, crc: bool) -> None:
    assert cgm.decode_status(cgm.encode_status(s, crc=crc), crc=crc) == s


@given(st.integers(0, 0xFFFF))
def test_racp_report_from_round_trip(offset: int) -> None:
    message = racp.report_from(offset)
    assert racp.decode_racp(racp.encode_racp(message)) == message


@given(
    st.builds(
        hts.TemperatureMeasurement,
        celsius=st.one_of(specials, st.integers(2500, 4500).map(lambda c: c / 100)),
        fahrenheit_sent=st.booleans(),
        timestamp=st.none() | date_times,
        kind=st.none() | st.sampled_from(list(hts.TemperatureType)),
    )
)
def test_temperature_round_trip(m: hts.TemperatureMeasurement) -> None:
    got = hts.decode_temperature(hts.encode_temperature(m))
    if isinstance(m.celsius, float):
        assert got.celsius == pytest.approx(m.celsius, abs=0.006)  # °F sent to 0.01 °F
    else:
        assert got.celsius is m.celsius
    assert (got.fahrenheit_sent, got.timestamp, got.kind) == (
        m.fahrenheit_sent,
        m.timestamp,
        m.kind,
    )


DECODERS: dict[str, Callable[[bytes], Any]] = {
    "measurement": lambda b: cgm.decode_measurements(b, crc=False),
    "measurement_crc": lambda b: cgm.decode_measurements(b, crc=True),
    "feature": cgm.decode_feature,
    "status": lambda b: cgm.decode_status(b, crc=True),
    "session_start": lambda b: cgm.decode_session_start(b, crc=False),
    "run_time": lambda b: cgm.decode_run_time(b, crc=True),
    "socp": lambda b: cgm.decode_socp(b, crc=False),
    "racp": racp.decode_racp,
    "temperature": hts.decode_temperature,
    "temperature_type": hts.decode_temperature_type,
    "interval": hts.decode_interval,
}


@pytest.mark.parametrize("name", sorted(DECODERS))
@given(data=st.binary(max_size=64))
def test_fuzzed_bytes_give_a_record_or_a_decode_error(name: str, data: bytes) -> None:
    try:
        DECODERS[name](data)
    except DecodeError as exc:
        assert exc.field and exc.characteristic
