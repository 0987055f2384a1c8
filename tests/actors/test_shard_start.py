"""A (re)started shard hosts its recently active devices, so its clock covers silent ones."""

from __future__ import annotations

import time
import uuid

import numpy as np
import psycopg

from actors.placement import shard_index
from actors.shard import DeviceShard, ShardConfig
from tests.helpers import insert_device

US = 1_000_000


def open_alerts(db: psycopg.Connection, device: uuid.UUID) -> list[tuple[str, int]]:
    """(rule, notifications so far) of the device's open alerts."""
    rows = db.execute(
        "SELECT rule, cardinality(notified_at) FROM alerts"
        " WHERE device_id = %s AND state <> 'cleared'",
        (device,),
    ).fetchall()
    return [(r[0], r[1]) for r in rows]


async def stream(shard: DeviceShard, device: uuid.UUID, now_s: float) -> None:
    ts = ((now_s - 60 * np.arange(5, 0, -1)) * US).astype(np.int64)
    outcome = await shard.ingest(device, ts, np.full(5, 120.0))
    assert outcome.status == "ok" and outcome.accepted == 5


async def test_a_restarted_shard_raises_signal_loss_for_a_device_silent_since(
    database_url: str, db: psycopg.Connection
) -> None:
    config = ShardConfig(database_url=database_url, shard_count=2)
    mine: list[uuid.UUID] = []
    theirs: list[uuid.UUID] = []
    while len(mine) < 4 or len(theirs) < 2:  # ids are random: draw until both shards have some
        device = insert_device(db)[2]
        (mine if shard_index(device, 2) == 0 else theirs).append(device)
    devices = mine + theirs
    stale, silent = mine[0], mine[1:]
    now = time.time()
    before, other = DeviceShard(0, config), DeviceShard(1, config)
    for d in devices:
        await stream(before if d in mine else other, d, now)
    # The stale device last streamed two days ago: its signal loss was raised back then.
    db.execute(
        "UPDATE device_state SET updated_at = now() - interval '2 days' WHERE device_id = %s",
        (stale,),
    )

    restarted = DeviceShard(0, config)  # what Ray starts after the old process died
    await restarted.tick(now + 3600)
    assert not any(open_alerts(db, d) for d in devices)  # it knows no device yet
    hosted = await restarted.start()
    assert set(silent) <= set(restarted.devices) and hosted == len(restarted.devices)
    assert not {stale, *theirs} & set(restarted.devices)
    assert await restarted.start() == hosted  # idempotent

    assert await restarted.tick(now + 3600) >= len(silent)
    await restarted.tick(now + 3660)
    for d in silent:
        assert open_alerts(db, d) == [("signal_loss", 1)]  # fired once, not again
    for d in [stale, *theirs]:
        assert open_alerts(db, d) == []
    for shard in (before, other, restarted):
        await shard.close()


async def test_a_shard_refuses_a_device_that_is_not_its_own(
    database_url: str, db: psycopg.Connection
) -> None:
    """Two shards must never both host a device (its alerts would fire twice)."""
    config = ShardConfig(database_url=database_url, shard_count=2)
    device = next(d for d in (insert_device(db)[2] for _ in range(20)) if shard_index(d, 2) == 1)
    shard = DeviceShard(0, config)
    ts = (np.array([time.time() - 60]) * US).astype(np.int64)
    outcome = await shard.ingest(device, ts, np.array([120.0]))
    assert outcome.status == "moved" and outcome.retry_after_s >= 1
    assert device not in shard.devices
    await shard.close()
