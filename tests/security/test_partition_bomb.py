"""Finding 1 (critical): one upload must never make the database create hundreds of
partitions, and a reading before 2000 is refused before it reaches storage.

A batch used to create a weekly partition for every week between its oldest and newest
reading: a 2016 reading plus one of today made 555 partitions, a year-1 reading made the
server run out of lock memory, and every other device's upload failed meanwhile.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from websockets.sync.client import connect

from actors.write_buffer import WriteBuffer
from algorithms.sensors import spec_for
from algorithms.validation import EARLIEST_TS_S, validate_readings
from storage.migrate import backend
from storage.pools import open_writer_connection
from storage.readings import DeviceRows
from tests.helpers import Account, insert_device, minutes_ago, sign_up

YEAR_ONE = "0001-01-01T00:00:00Z"


def partitions(db) -> set[str]:
    """The readings table's partitions (plain PostgreSQL) or chunks (TimescaleDB)."""
    rows = db.execute(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'readings'::regclass"
    ).fetchall()
    return {r[0] for r in rows}


def stored(db, device_id: str) -> int:
    sql = "SELECT count(*) FROM readings WHERE device_id = %s"
    return db.execute(sql, (device_id,)).fetchone()[0]


@pytest.mark.parametrize(
    ("ts_s", "refused"),
    [(EARLIEST_TS_S - 1, True), (EARLIEST_TS_S, False), (-62_135_596_800, True)],
)
def test_the_earliest_accepted_time_is_2000_01_01(ts_s: int, refused: bool) -> None:
    spec = spec_for("glucose")
    problems = validate_readings(np.array([ts_s]), np.array([100.0]), spec, now_s=1.8e9)
    assert [(p.index, p.field) for p in problems] == ([(0, "ts")] if refused else [])
    assert datetime.fromtimestamp(EARLIEST_TS_S, UTC) == datetime(2000, 1, 1, tzinfo=UTC)


def week_partition(ts: datetime) -> str:
    """The name of the plain-PostgreSQL partition holding ``ts`` (weeks from Monday
    2000-01-03, as ``vigil_ensure_readings_partitions`` names them)."""
    origin = datetime(2000, 1, 3, tzinfo=UTC)
    start = origin + timedelta(weeks=(ts - origin) // timedelta(weeks=1))
    return f"readings_{start:%Y%m%d}"


async def test_the_writer_creates_exactly_the_weeks_that_get_rows(database_url: str, db) -> None:
    device = insert_device(db)[2]
    old = datetime(2011, 6, 15, 12, 0, tzinfo=UTC)
    now = datetime.now(UTC).replace(microsecond=0)
    ts_us = np.array([int(old.timestamp()) * 10**6, int(now.timestamp()) * 10**6])
    before = partitions(db)
    buffer = WriteBuffer(lambda: open_writer_connection(database_url))
    try:
        rows = DeviceRows(device, ts_us, np.array([100.0, 101.0]), np.full(2, np.nan), ["Flat"] * 2)
        assert (await buffer.submit(rows)).all()
    finally:
        await buffer.close()
    created = partitions(db) - before
    assert len(created) <= 2
    if backend(database_url) == "postgres":  # TimescaleDB names its chunks itself
        assert created <= {week_partition(old), week_partition(now)}
        assert week_partition(old) in partitions(db)
    assert stored(db, str(device)) == 2


def test_a_year_one_reading_is_a_422_naming_it_and_creates_nothing(account: Account, db) -> None:
    device = account.device("glucose")
    before = partitions(db)
    ok = {"ts": minutes_ago(5).isoformat(), "value": 100.0}
    r = account.upload(device["id"], [ok, {"ts": YEAR_ONE, "value": 100.0}])
    assert r.status_code == 422, r.text
    (item,) = r.json()["detail"]
    assert item["loc"] == ["body", "readings", 1, "ts"]
    assert "2000-01-01" in item["msg"]
    assert partitions(db) == before
    assert stored(db, device["id"]) == 0


def test_the_websocket_ingest_refuses_a_year_one_reading_too(account: Account, stack, db) -> None:
    device = account.device("glucose")
    before = partitions(db)
    url = stack.url.replace("http://", "ws://") + f"/v1/devices/{device['id']}/readings/stream"
    with connect(f"{url}?token={device['upload_token']}") as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(json.dumps({"seq": 1, "readings": [{"ts": YEAR_ONE, "value": 100.0}]}))
        answer = json.loads(ws.recv(timeout=30))
    assert (answer["status"], answer["seq"]) == (422, 1)
    assert answer["detail"][0]["loc"] == ["readings", 0, "ts"]
    assert partitions(db) == before


def test_a_2016_and_today_batch_makes_two_partitions_and_stalls_no_one(
    account: Account, client, db
) -> None:
    bomb = account.device("glucose")
    other = sign_up(client)
    bystander = other.device("glucose")
    old = datetime(2016, 3, 2, 8, 0, tzinfo=UTC)
    before = partitions(db)
    statuses: list[int] = []
    stop = threading.Event()

    def keep_uploading() -> None:
        i = 0
        while not stop.is_set() or i < 3:
            ts = minutes_ago(30) + timedelta(seconds=i)
            statuses.append(
                other.upload(bystander["id"], [{"ts": ts.isoformat(), "value": 110.0}]).status_code
            )
            i += 1

    worker = threading.Thread(target=keep_uploading)
    worker.start()
    try:
        refused = account.upload(bomb["id"], [{"ts": YEAR_ONE, "value": 100.0}])
        r = account.upload(
            bomb["id"],
            [
                {"ts": old.isoformat(), "value": 100.0},
                {"ts": minutes_ago(2).isoformat(), "value": 101.0},
            ],
        )
    finally:
        stop.set()
        worker.join(timeout=60)
    assert refused.status_code == 422
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 2, "duplicates": 0}
    assert len(partitions(db) - before) <= 2
    # Other devices' uploads all went through while it happened.
    assert statuses and set(statuses) == {200}, statuses
    assert stored(db, bystander["id"]) == len(statuses)
    assert stored(db, bomb["id"]) == 2
