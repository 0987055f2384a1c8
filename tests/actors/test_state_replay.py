"""A shard that loads a device whose stored alert state lags its readings (they only extended
the stream, so the state was not written with them) replays those readings: it holds the
very state the shard before it held in memory, and goes on exactly as that one would."""

from __future__ import annotations

import time
import uuid

import numpy as np

from actors.device import accept_many
from actors.shard import DeviceShard, ShardConfig
from tests.helpers import insert_device

US = 1_000_000


def insert_temperature_device(db) -> uuid.UUID:
    _user, profile, _glucose = insert_device(db)
    return db.execute(
        "INSERT INTO devices (profile_id, kind, serial, interval_s)"
        " VALUES (%s, 'temperature', %s, 60) RETURNING id",
        (profile, uuid.uuid4().hex[:8]),
    ).fetchone()[0]


def value(kind: str, k: int, minute: int) -> float:
    if kind == "temperature":
        return 36.4 + 0.3 * np.sin(minute / 6 + k) + (1.6 if k == 0 and minute > 20 else 0.0)
    if k < 2:  # falls into a low and stays there: fires, and repeats
        return max(48.0, 130.0 - 4.0 * minute - 3 * k)
    return 140 + 50 * np.sin(minute / 9 + k)


async def test_a_restarted_shard_replays_the_readings_after_the_written_state(
    database_url: str, db
) -> None:
    glucose = [insert_device(db)[2] for _ in range(6)]
    temperature = [insert_temperature_device(db) for _ in range(2)]
    kinds = {**dict.fromkeys(glucose, "glucose"), **dict.fromkeys(temperature, "temperature")}
    devices = glucose + temperature
    start_s = time.time() - 61 * 60
    before = DeviceShard(0, ShardConfig(database_url=database_url))
    for minute in range(60):
        ts = np.array([int((start_s + 60 * minute) * US)], np.int64)
        batches = [
            (d, ts, np.array([value(kinds[d], k % 6, minute)]), None, False, None, None)
            for k, d in enumerate(devices)
        ]
        outcomes = await before.ingest_many(batches)
        assert [o.status for o in outcomes] == ["ok"] * len(devices)
    fired = db.execute(
        "SELECT count(*) FROM alerts WHERE device_id = ANY(%s)", (devices,)
    ).fetchone()[0]
    assert fired >= 2  # the two falling glucose streams alerted

    newest = int((start_s + 60 * 59) * US)
    lagging = [
        d
        for d in devices
        if db.execute("SELECT state FROM device_state WHERE device_id = %s", (d,)).fetchone()[0][
            "through_us"
        ]
        < newest
    ]
    assert len(lagging) >= 6, lagging  # most states were not written with the last readings

    after = DeviceShard(0, ShardConfig(database_url=database_url))
    try:
        for d in devices:
            old, new = before.devices[d], await after._load(d)
            assert new is not None
            assert new.alerts.state_dict() == old.alerts.state_dict(), kinds[d]
            assert (new.alerts.open, new.alerts.acked) == (old.alerts.open, old.alerts.acked)
            assert np.array_equal(new.window[0], old.window[0])

        # And the next readings give both the same trend, live values and alerts.
        for minute in range(60, 64):
            ts = np.array([int((start_s + 60 * minute) * US)], np.int64)
            now_us = int((start_s + 60 * minute + 1) * US)
            prepared = [
                accept_many(
                    [
                        (
                            shard.devices[d],
                            ts,
                            np.array([value(kinds[d], k % 6, minute)]),
                            None,
                            False,
                        )
                        for k, d in enumerate(devices)
                    ],
                    now_us,
                )
                for shard in (before, after)
            ]
            for a, b in zip(*prepared, strict=True):
                assert a.live == b.live
                assert np.array_equal(a.rows.rate_per_min, b.rows.rate_per_min, equal_nan=True)
                assert [(o.type, o.rule, o.value) for o in a.ops] == [
                    (o.type, o.rule, o.value) for o in b.ops
                ]
    finally:
        await before.close()
        await after.close()
