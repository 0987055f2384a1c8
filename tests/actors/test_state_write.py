"""The alert state is written only when it changed, in binary, and the readings COPY is binary."""

from __future__ import annotations

import time
import uuid

import numpy as np
import psycopg

from actors.alerting import DeviceAlerts
from actors.shard import DeviceShard, ShardConfig
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
    assert state == actor.alerts.state_dict()

    # A late reading (older than the stream's head) is stored but changes no alert state.
    late = await shard.ingest(device, minutes(now, 11), np.array([145.0]))
    assert late.accepted == 1
    assert stored_state(db, device) == (state, writer)
    history = await shard.ingest(device, minutes(now, 13), np.array([155.0]), history=True)
    assert history.accepted == 1
    assert stored_state(db, device)[1] == writer

    assert (await shard.ingest(device, minutes(now, 1), np.array([90.0]))).accepted == 1
    state_after, writer_after = stored_state(db, device)
    assert writer_after != writer and state_after != state
    assert state_after == actor.alerts.state_dict()
    await shard.close()

    # A restarted shard continues from the stored state and writes its next change.
    restarted = DeviceShard(0, ShardConfig(database_url=database_url))
    assert (await restarted.ingest(device, minutes(now, 0), np.array([88.0]))).accepted == 1
    assert stored_state(db, device)[0] == restarted.devices[device].alerts.state_dict()
    assert stored_state(db, device)[0] != state_after
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
    first = alerts.state_to_write()
    assert first is not None and alerts.state_to_write() is None  # unchanged: nothing
    snap = alerts.snapshot()
    alerts.restore(snap)  # e.g. the buffer refused the write
    assert alerts.state_to_write() == first
