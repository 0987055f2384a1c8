"""The alert state is written only when it changed (and, for readings that only extend the
stream, at most once a minute: a restarted shard replays the readings after it), in binary,
and the readings COPY is binary."""

from __future__ import annotations

import time
import uuid

import numpy as np
import psycopg

from actors.alerting import DeviceAlerts
from actors.shard import DeviceShard, ShardConfig
from algorithms.evaluator import episode_key
from tests.helpers import insert_device

US = 1_000_000


def stored_state(db: psycopg.Connection, device: uuid.UUID) -> tuple[dict, int]:
    """The device's stored state and the transaction that last wrote it."""
    row = db.execute(
        "SELECT state, xmin::text::bigint FROM device_state WHERE device_id = %s", (device,)
    ).fetchone()
    return row[0], row[1]


def minutes(now_s: float, *ago: float) -> np.ndarray:
    return ((now_s - 60 * np.asarray(ago)) * US).astype(np.int64)


async def test_state_is_rewritten_only_when_it_changed(database_url: str, db) -> None:
    device = insert_device(db)[2]
    now = time.time()
    shard = DeviceShard(0, ShardConfig(database_url=database_url))
    values = np.array([150.0, 140.0, 128.0, 117.0, 105.0, 96.0])
    ts = minutes(now, 12, 10, 8, 6, 4, 2)
    assert (await shard.ingest(device, ts, values)).accepted == 6
    actor = shard.devices[device]
    state, writer = stored_state(db, device)
    assert state == {**actor.alerts.state_dict(), "through_us": int(ts[-1])}

    # A late reading (older than the stream's head) is stored but changes no alert state.
    late = await shard.ingest(device, minutes(now, 11), np.array([145.0]))
    assert late.accepted == 1
    assert stored_state(db, device) == (state, writer)
    history = await shard.ingest(device, minutes(now, 13), np.array([155.0]), history=True)
    assert history.accepted == 1
    assert stored_state(db, device)[1] == writer

    # A history reading newer than every other is stored, not evaluated: the state is
    # written with it, so that a restarted shard does not replay it.
    newer = await shard.ingest(device, minutes(now, 1.5), np.array([100.0]), history=True)
    assert newer.accepted == 1
    state, writer = stored_state(db, device)
    assert state["through_us"] == int(minutes(now, 1.5)[0])
    # A reading that only extends the stream and opens no episode: not written yet.
    assert (await shard.ingest(device, minutes(now, 1), np.array([90.0]))).accepted == 1
    assert stored_state(db, device) == (state, writer)
    in_memory = actor.alerts.state_dict()
    assert in_memory != {k: v for k, v in state.items() if k != "through_us"}
    await shard.close()

    # A restarted shard replays that reading: it continues from the state it had in memory,
    # and writes the state with its first batch.
    restarted = DeviceShard(0, ShardConfig(database_url=database_url))
    assert await restarted._load(device) is not None
    assert restarted.devices[device].alerts.state_dict() == in_memory
    assert (await restarted.ingest(device, minutes(now, 0), np.array([88.0]))).accepted == 1
    stored = stored_state(db, device)[0]
    assert stored == {
        **restarted.devices[device].alerts.state_dict(),
        "through_us": int(minutes(now, 0)[0]),
    }
    await restarted.close()


async def test_binary_copy_stores_every_field_as_trended(database_url: str, db) -> None:
    device = insert_device(db)[2]
    now = time.time()
    shard = DeviceShard(0, ShardConfig(database_url=database_url))
    ts = minutes(now, *range(20, 0, -1))
    values = 100.0 + 2.5 * np.arange(20)
    assert (await shard.ingest(device, ts, values)).accepted == 20
    rows = db.execute(
        "SELECT (extract(epoch FROM ts) * 1000000)::bigint, value, rate_per_min, direction"
        " FROM readings WHERE device_id = %s ORDER BY ts",
        (device,),
    ).fetchall()
    assert [r[0] for r in rows] == ts.tolist()
    assert [r[1] for r in rows] == values.tolist()
    assert rows[0][2] is None and rows[0][3] == "NOT COMPUTABLE"  # no trend yet: NULL
    assert abs(rows[-1][2] - 2.5) < 1e-6 and rows[-1][3] == "SingleUp"
    await shard.close()


def test_a_write_not_made_makes_the_next_state_be_written() -> None:
    alerts = DeviceAlerts("glucose")
    first = alerts.state_to_write(None, False, 0.0)
    assert first is not None and alerts.state_to_write(None, False, 1.0) is None  # unchanged
    snap = alerts.snapshot()
    alerts.restore(snap)  # e.g. the buffer refused the write
    assert alerts.state_to_write(None, False, 2.0) == first


def test_readings_that_only_extend_the_stream_are_written_once_a_minute() -> None:
    alerts = DeviceAlerts("glucose")
    t0 = 1_800_000_000.0

    def reading(minute: int, value: float) -> list:
        ops, _live = alerts.on_readings(
            np.array([t0 + 60 * minute]), np.array([value]), t0 + 60 * minute, t0 + 60 * minute
        )
        return ops

    def write(minute: int, now_s: float, replayable: bool = True) -> dict | None:
        return alerts.state_to_write(int((t0 + 60 * minute) * US), replayable, now_s)

    reading(0, 120.0)
    assert write(0, 0.0) is not None  # the first: whatever it changed
    reading(1, 121.0)
    assert write(1, 30.0) is None  # no episode changed, the last write is recent
    reading(2, 122.0)
    assert write(2, 30.0, replayable=False) is not None  # not replayable: written
    reading(3, 123.0)
    assert write(3, 89.0) is None
    reading(4, 124.0)
    assert write(4, 90.0) is not None  # a minute after the last write
    reading(15, 125.0)  # ten minutes and more of the readings' time
    assert write(15, 91.0) is not None
    # Falling towards the low threshold (the filter lags): written only when an episode
    # changes, here when the low alert fires.
    key, minute, written = episode_key(alerts.evaluator), 16, []
    while not any(op.type == "fired" for op in reading(minute, 45.0)):
        changed = episode_key(alerts.evaluator) != key
        key = episode_key(alerts.evaluator)
        written.append((changed, write(minute, 92.0) is not None))
        minute += 1
    assert write(minute, 92.0) is not None  # fired
    assert written and all(changed == was_written for changed, was_written in written)
    alerts.set_rules(None, "UTC")
    reading(minute + 1, 45.0)
    assert write(minute + 1, 93.0) is not None  # new rules: replayed readings would meet them
