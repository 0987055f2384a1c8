"""One ``ingest_many`` call, several devices' batches: the call waits once for their group
commit, and each batch is still answered on its own (stored, a duplicate re-send, rejected,
refused by the database, or held past the commit timeout)."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import psycopg

from actors.ingest_call import IngestBatch
from actors.shard import DeviceShard, ShardConfig
from actors.write_buffer import WriteBuffer
from storage.pools import open_writer_connection
from tests.helpers import insert_device, stored_readings

US = 1_000_000


def batch(device, now_s: float, *minutes_ago: float, value: float = 120.0) -> IngestBatch:
    ts = ((now_s - 60 * np.asarray(minutes_ago)) * US).astype(np.int64)
    return (device, ts, np.full(len(ts), value), None, False, None, None)


async def test_each_batch_of_a_call_is_answered_on_its_own(database_url: str, db) -> None:
    fresh, resent, invalid, gone = (insert_device(db)[2] for _ in range(4))
    shard = DeviceShard(0, ShardConfig(database_url=database_url))
    now = time.time()
    try:
        first = await shard.ingest_many([batch(resent, now, 3, 2), batch(gone, now, 3)])
        assert [o.status for o in first] == ["ok", "ok"]
        # The device is deleted while its shard still hosts it: the database refuses its rows.
        db.execute("DELETE FROM readings WHERE device_id = %s", (gone,))
        db.execute("DELETE FROM devices WHERE id = %s", (gone,))
        call = [
            batch(fresh, now, 4, 3, 2, 1),
            batch(resent, now, 3, 2),  # known and committed: duplicates
            batch(invalid, now, 1, value=-5.0),  # no glucose value: rejected
            batch(gone, now, 1),
            batch(fresh, now, 0.5),  # the same device twice in one call
        ]
        fresh_out, resent_out, invalid_out, gone_out, again_out = await shard.ingest_many(call)
        assert (fresh_out.status, fresh_out.accepted, fresh_out.duplicates) == ("ok", 4, 0)
        assert (resent_out.status, resent_out.accepted, resent_out.duplicates) == ("ok", 0, 2)
        assert invalid_out.status == "rejected" and invalid_out.problems
        assert gone_out.status == "busy"  # failed alone: not stored, retried by the client
        assert (again_out.status, again_out.accepted) == ("ok", 1)
        assert gone not in shard.devices  # its stream state does not keep refused rows
        assert tuple(stored_readings(db, d) for d in (fresh, resent, invalid)) == (5, 2, 0)
    finally:
        await shard.close()


async def test_a_call_held_past_the_commit_timeout_is_answered_busy_and_stored_later(
    database_url: str, db
) -> None:
    devices = [insert_device(db)[2] for _ in range(3)]
    release = asyncio.Event()

    async def slow_connect() -> psycopg.AsyncConnection:
        await release.wait()  # the commit cannot start before: the call times out
        return await open_writer_connection(database_url)

    shard = DeviceShard(0, ShardConfig(database_url=database_url, commit_timeout_s=0.5))
    shard._buffer = WriteBuffer(slow_connect)
    now = time.time()
    try:
        started = time.monotonic()
        held = await shard.ingest_many([batch(d, now, 2, 1) for d in devices])
        took = time.monotonic() - started
        assert [o.status for o in held] == ["busy"] * 3
        assert 0.5 <= took < 3, took  # the call's one commit timeout, not one per batch
        release.set()
        deadline = time.monotonic() + 10
        while (again := await shard.ingest_many([batch(d, now, 2, 1) for d in devices]))[
            0
        ].status != "ok":
            assert time.monotonic() < deadline, again
            await asyncio.sleep(0.1)
        # The held rows were committed once, by the buffer: the re-send finds duplicates.
        assert [(o.status, o.accepted, o.duplicates) for o in again] == [("ok", 0, 2)] * 3
        assert [stored_readings(db, d) for d in devices] == [2, 2, 2]
    finally:
        await shard.close()
