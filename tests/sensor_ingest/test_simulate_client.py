"""The pure parts of the streaming client: response handling, payloads, serials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import numpy as np
import pytest

from algorithms.sensors import SensorKind
from sensor_ingest.simulate import DeviceRequest, SimulationConfig, make_fleet
from sensor_ingest.simulate.client import (
    MAX_BATCH_READINGS,
    BatchAction,
    Device,
    chunked,
    classify_response,
    parse_retry_after,
    readings_payload,
)
from sensor_ingest.simulate.ingest_stream import stream_url
from sensor_ingest.simulate.runner import device_request, device_serial


@pytest.mark.parametrize(
    ("status", "action"),
    [
        (200, BatchAction.DONE),
        (201, BatchAction.DONE),
        (401, BatchAction.REAUTH),
        (503, BatchAction.RETRY_AFTER),
        (429, BatchAction.RETRY_AFTER),
        (400, BatchAction.SKIP),
        (404, BatchAction.SKIP),
        (413, BatchAction.SKIP),
        (422, BatchAction.SKIP),
        (500, BatchAction.BACKOFF),
        (502, BatchAction.BACKOFF),
    ],
)
def test_classify_response(status: int, action: BatchAction) -> None:
    assert classify_response(status) is action


def test_parse_retry_after() -> None:
    assert parse_retry_after("5") == 5.0
    assert parse_retry_after(" 0.5 ") == 0.5
    assert parse_retry_after(None) == 1.0
    assert parse_retry_after("soon", default=2.0) == 2.0
    assert parse_retry_after("-3") == 0.0
    assert parse_retry_after("100000") == 120.0
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after(date, now=now.timestamp()) == pytest.approx(30.0)


def test_readings_payload_has_offset_timestamps_and_sensor_precision() -> None:
    ts = np.array([1_750_000_000.0, 1_750_000_300.0])
    glucose = readings_payload(SensorKind.GLUCOSE, ts, np.array([123.4, 87.6]))
    assert [r["value"] for r in glucose] == [123, 88]
    parsed = datetime.fromisoformat(glucose[0]["ts"])
    assert parsed.utcoffset() == timedelta(0)
    assert parsed.timestamp() == ts[0]
    temperature = readings_payload(SensorKind.TEMPERATURE, ts, np.array([36.8123, 38.456]))
    assert [r["value"] for r in temperature] == [36.81, 38.46]


def test_chunked_respects_the_batch_limit() -> None:
    sizes = [len(c) for c in chunked(list(range(25_001)))]
    assert sizes == [MAX_BATCH_READINGS, MAX_BATCH_READINGS, 5_001]
    assert list(chunked([])) == []


def test_device_serials_are_stable_and_per_account() -> None:
    config = SimulationConfig("http://x", "Ann@Example.org", "pw", "Ann", devices=4, kind="mixed")
    fleet = make_fleet(4, "mixed", seed=0)
    serials = [device_serial(config, i, p) for i, p in enumerate(fleet)]
    assert len(set(serials)) == 4
    assert serials[0].startswith("sim-") and serials[0].endswith("-0000-cgm")
    assert serials[1].endswith("-0001-tmp")
    same_account = SimulationConfig("http://y", "ann@example.org", "pw2", "Ann")
    assert device_serial(same_account, 0, fleet[0]) == serials[0]
    other = SimulationConfig("http://x", "bob@example.org", "pw", "Bob")
    assert device_serial(other, 0, fleet[0]) != serials[0]


def test_device_request_and_response_shapes() -> None:
    config = SimulationConfig("http://x", "a@b.c", "pw", "A", kind="temperature")
    persona = make_fleet(1, "temperature", seed=0)[0]
    request = device_request(config, 0, persona)
    assert request.payload() == {
        "kind": "temperature",
        "serial": request.serial,
        "interval_s": 60,
        "model": "Vigil Virtual Patch",
    }
    assert DeviceRequest(SensorKind.GLUCOSE, "s", 300).payload() == {
        "kind": "glucose",
        "serial": "s",
        "interval_s": 300,
    }
    device = Device.from_json(
        {"id": 7, "kind": "glucose", "serial": "s", "model": None, "interval_s": 300, "x": 1}
    )
    assert device == Device("7", SensorKind.GLUCOSE, "s", 300, None)


def test_ingest_stream_url_follows_the_api_scheme() -> None:
    assert stream_url("http://127.0.0.1:8000/", "d1") == (
        "ws://127.0.0.1:8000/v1/devices/d1/readings/stream"
    )
    assert stream_url("https://vigil.example", "d2") == (
        "wss://vigil.example/v1/devices/d2/readings/stream"
    )
