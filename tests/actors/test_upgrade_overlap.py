"""KubeRay's upgrade overlap: the new cluster's shard adopts a device from the database while
the old cluster's shard of the same device still writes. Both run here as two real
``DeviceShard`` instances against the real database, sending overlapping batches at once:
every reading is stored exactly once, and each alert is raised and notified once."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import psycopg

from actors.shard import DeviceShard, ShardConfig
from tests.helpers import insert_device

US = 1_000_000


def batches(start_s: float, count: int, size: int) -> list[np.ndarray]:
    """``count`` batches of ``size`` one-minute timestamps, each overlapping the previous by
    half, as a phone re-sending its unacknowledged tail to whichever cluster answers."""
    step = size // 2
    return [
        ((start_s + 60 * np.arange(i * step, i * step + size)) * US).astype(np.int64)
        for i in range(count)
    ]


async def send_all(shard: DeviceShard, device: uuid.UUID, sent: list[np.ndarray]) -> int:
    accepted = 0
    for ts in sent:
        outcome = await shard.ingest(device, ts, np.full(ts.size, 45.0))  # urgently low
        assert outcome.status == "ok", outcome
        accepted += outcome.accepted
    return accepted


async def test_old_and_new_cluster_shards_write_the_same_readings_once(
    database_url: str, db: psycopg.Connection
) -> None:
    device = insert_device(db)[2]
    config = ShardConfig(database_url=database_url, shard_count=1)
    old, new = DeviceShard(0, config), DeviceShard(0, config)
    count, size = 12, 20
    last_minute = (count - 1) * size // 2 + size - 1
    sent = batches(time.time() - 60 * (last_minute + 1), count, size)  # ends a minute ago
    expected = np.unique(np.concatenate(sent))
    try:
        # The old cluster's shard has hosted the device all along; the new one adopts it.
        await send_all(old, device, sent[:2])
        assert await new.start() >= 1 and device in new.devices
        accepted = await asyncio.gather(
            send_all(old, device, sent[2:]), send_all(new, device, sent[1:])
        )
    finally:
        await old.close()
        await new.close()
    stored = [
        row[0]
        for row in db.execute(
            "SELECT (extract(epoch FROM ts) * 1000000)::bigint FROM readings"
            " WHERE device_id = %s ORDER BY ts",
            (device,),
        ).fetchall()
    ]
    assert stored == expected.tolist()  # none lost, none twice
    # Each reading was acknowledged as new by exactly one of the writers.
    assert sum(accepted) + np.unique(np.concatenate(sent[:2])).size == expected.size
    open_alerts = db.execute(
        "SELECT rule, count(*) FROM alerts WHERE device_id = %s AND state <> 'cleared'"
        " GROUP BY rule",
        (device,),
    ).fetchall()
    assert open_alerts and all(count == 1 for _, count in open_alerts), open_alerts
    assert "urgent_low" in {rule for rule, _ in open_alerts}
    notified = db.execute(
        "SELECT rule, cardinality(notified_at) FROM alerts WHERE device_id = %s", (device,)
    ).fetchall()
    # Neither writer repeated an alert the other had raised: one row and one notice per rule.
    rules = [rule for rule, _ in notified]
    assert len(rules) == len(set(rules)) and all(n == 1 for _, n in notified), notified
