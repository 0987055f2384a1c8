"""The durable queue (SQLite WAL) and the gateway's TOML config."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from sensor_ingest.ble.config import ConfigError, load_config, parse_config
from sensor_ingest.ble.queue import Pending, QueuedReading, ReadingQueue
from sensor_ingest.ble.uploader import same_site

DEVICE = "5b0c52f4-1f7e-4d6b-9d1c-4bd1b2a0c001"


def readings(offsets: range, session: int = 1000) -> list[QueuedReading]:
    return [QueuedReading("S", session, o, DEVICE, session + o, 100.0 + o) for o in offsets]


def test_wal_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite3"
    queue = ReadingQueue(path)
    assert queue.put(readings(range(0, 600, 300))) == 2
    queue.close()
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"
    again = ReadingQueue(path)
    assert [p.value for p in again.next_batch(DEVICE, 10)] == [100.0, 400.0]
    assert again.pending_count() == 2


def test_a_reading_leaves_only_when_acknowledged_and_is_never_queued_twice(
    tmp_path: Path,
) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    assert queue.put(readings(range(0, 1500, 300))) == 5
    assert queue.put(readings(range(0, 1500, 300))) == 0  # same (sensor, session, offset)
    batch = queue.next_batch(DEVICE, 3)
    assert queue.pending_count() == 5  # handed out is not gone
    queue.ack([p.id for p in batch])
    assert queue.pending_count() == 2 and queue.acked_offset("S", 1000) == 600
    assert queue.put(readings(range(0, 900, 300))) == 0  # at or below the ack: duplicates
    assert queue.latest_session("S") == 1000 and queue.latest_session("T") is None
    assert queue.put(readings(range(0, 300, 300), session=5000)) == 1  # a new session counts
    assert queue.counter("acked") == 3


def test_bounded_drops_oldest_and_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3", max_readings=4)
    queue.put(readings(range(0, 1800, 300)))
    assert queue.pending_count() == 4
    assert queue.counter("dropped_full") == 2
    assert [p.value for p in queue.next_batch(DEVICE, 10)] == [700.0, 1000.0, 1300.0, 1600.0]
    assert "dropped the 2 oldest" in caplog.text


def test_rejected_readings_are_dropped_and_counted(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3", keep_acked_s=0)
    queue.put(readings(range(0, 900, 300)))
    first, *rest = queue.next_batch(DEVICE, 10)
    queue.reject([first.id], "HTTP 422")
    assert queue.counter("rejected") == 1 and queue.pending_count() == 2
    queue.ack([p.id for p in rest], now=10.0)
    queue.ack([], now=20.0)  # acknowledged rows older than keep_acked_s are pruned
    assert queue._db.execute("SELECT count(*) FROM readings").fetchone()[0] == 0


VALID = """
[vigil]
url = "http://127.0.0.1:8000/"

[link]
backend = "bumble"
transport = "tcp-client:127.0.0.1:9001"

[queue]
path = "/tmp/gw.sqlite3"
max_readings = 5000

[[sensors]]
address = "f0:f1:f2:f3:f4:f5"
kind = "glucose"
device_id = "5b0c52f4-1f7e-4d6b-9d1c-4bd1b2a0c001"
upload_token = "vdt_secret"

[[sensors]]
address = "F0:F1:F2:F3:F4:F6"
kind = "temperature"
device_id = "5b0c52f4-1f7e-4d6b-9d1c-4bd1b2a0c002"
upload_token = "vdt_other"
utc_offset_min = -300
"""


def test_config_file(tmp_path: Path) -> None:
    path = tmp_path / "gateway.toml"
    path.write_text(VALID)
    config = load_config(path)
    assert config.url == "http://127.0.0.1:8000" and config.backend == "bumble"
    assert config.transport == "tcp-client:127.0.0.1:9001"
    assert config.queue_path == Path("/tmp/gw.sqlite3") and config.max_readings == 5000
    first, second = config.sensors
    assert first.address == "F0:F1:F2:F3:F4:F5" and first.glucose
    assert second.kind == "temperature" and second.utc_offset_min == -300
    assert "vdt_secret" not in repr(config)  # tokens stay out of logs


def _doc(**changes: object) -> dict:
    doc: dict = {
        "vigil": {"url": "https://v.example"},
        "sensors": [
            {
                "address": "F0:F1:F2:F3:F4:F5",
                "kind": "glucose",
                "device_id": DEVICE,
                "upload_token": "t",
            }
        ],
    }
    for key, value in changes.items():
        if key.startswith("sensor_"):
            doc["sensors"][0][key.removeprefix("sensor_")] = value
        else:
            doc[key] = value
    return doc


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"vigil": {}}, "vigil.url"),
        ({"vigil": {"url": "ftp://x"}}, "vigil.url"),
        ({"vigil": {"url": "http://x", "port": 1}}, "vigil.port"),
        ({"link": {"backend": "serial"}}, "link.backend"),
        ({"link": {"backend": "bumble"}}, "link.transport"),
        ({"queue": {"max_readings": 0}}, "queue.max_readings"),
        ({"queue": {"max_readings": True}}, "queue.max_readings"),
        ({"sensors": []}, "sensors"),
        ({"sensors": ["x"]}, "sensors[0]"),
        ({"sensor_address": "F0-F1"}, "sensors[0].address"),
        ({"sensor_kind": "pulse"}, "sensors[0].kind"),
        ({"sensor_device_id": "dev-1"}, "sensors[0].device_id"),
        ({"sensor_upload_token": ""}, "sensors[0].upload_token"),
        ({"sensor_utc_offset_min": 2000}, "sensors[0].utc_offset_min"),
        ({"sensor_colour": "red"}, "sensors[0].colour"),
        ({"extra": {}}, "config.extra"),
    ],
)
def test_config_errors_name_the_field(changes: dict, field: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(_doc(**changes))
    assert err.value.field == field


def test_config_duplicate_address_and_bad_toml(tmp_path: Path) -> None:
    doc = _doc()
    doc["sensors"].append(dict(doc["sensors"][0]))
    with pytest.raises(ConfigError, match="twice"):
        parse_config(doc)
    path = tmp_path / "bad.toml"
    path.write_text("[vigil\nurl=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(path)


def test_an_upload_batch_ends_where_the_body_site_changes() -> None:
    batch = [Pending(1, 0.0, 36.0, "axilla"), Pending(2, 60.0, 36.1, "axilla")]
    assert same_site(batch) == batch
    moved = [*batch, Pending(3, 120.0, 36.9, "chest"), Pending(4, 180.0, 36.2, "axilla")]
    assert same_site(moved) == batch
    assert same_site(moved[2:]) == moved[2:3]


def test_a_queued_reading_keeps_its_body_site_for_the_upload(tmp_path: Path) -> None:
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    queue.put([QueuedReading("T", 1000, 0, DEVICE, 1000.0, 36.6, "ear")])
    assert [p.site for p in queue.next_batch(DEVICE, 10)] == ["ear"]
    queue.close()
