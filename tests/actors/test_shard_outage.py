"""A shard while the database cannot be reached: uploads are refused at once (``busy``, the
API's 503 with Retry-After), not held for the commit timeout each; the rows of the commit
that failed stay buffered and are committed when it is back, and nothing is acknowledged
before. The outage is the write buffer's connection being refused (its ``connect`` seam);
the device is loaded from the real database."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import psycopg

from actors.shard import DeviceShard, ShardConfig
from actors.write_buffer import WriteBuffer
from storage.pools import open_writer_connection
from tests.helpers import CuttableDatabase, insert_device, stored_readings

US = 1_000_000
COMMIT_TIMEOUT_S = 10.0


def minutes(now_s: float, *ago: float) -> np.ndarray:
    return ((now_s - 60 * np.asarray(ago)) * US).astype(np.int64)


async def test_while_the_database_is_down_uploads_are_refused_at_once(
    database_url: str, db
) -> None:
    device = insert_device(db)[2]
    reachable = asyncio.Event()

    async def connect() -> psycopg.AsyncConnection:
        if not reachable.is_set():
            raise psycopg.OperationalError("connection refused (the database is down)")
        return await open_writer_connection(database_url)

    shard = DeviceShard(0, ShardConfig(database_url=database_url, commit_timeout_s=10.0))
    shard._buffer = WriteBuffer(connect, retry_initial_s=0.05, retry_max_s=0.2)
    now = time.time()
    first, second = minutes(now, 6, 5, 4), minutes(now, 3, 2, 1)
    low, lower = np.array([120.0, 121.0, 122.0]), np.array([123.0, 124.0, 125.0])
    try:
        started = time.monotonic()
        in_failed_commit = await shard.ingest(device, first, low)
        after_failure = await shard.ingest(device, second, lower)
        took = time.monotonic() - started
        assert (in_failed_commit.status, in_failed_commit.cause) == ("busy", "down")
        assert (after_failure.status, after_failure.cause) == ("busy", "down")
        assert in_failed_commit.retry_after_s > 0
        assert took < COMMIT_TIMEOUT_S / 4, took  # not the commit timeout, twice
        resent = await shard.ingest(device, first, low)
        assert resent.status == "busy"  # still buffered, not committed: not acknowledged
        assert stored_readings(db, device) == 0

        reachable.set()  # back: the buffer's retry commits the first batch
        deadline = time.monotonic() + 5
        while (again := await shard.ingest(device, first, low)).status != "ok":
            assert time.monotonic() < deadline, again
            await asyncio.sleep(0.1)
        assert (again.accepted, again.duplicates) == (0, 3)  # committed once, by the retry
        later = await shard.ingest(device, second, lower)
        assert (later.status, later.accepted) == ("ok", 3)  # refused, so never buffered
        assert stored_readings(db, device) == 6
    finally:
        await shard.close()


async def test_a_resent_batch_waiting_for_its_commit_hears_of_an_outage_at_once(
    database_url: str, db
) -> None:
    """A batch sent again while its first sending's commit is still under way waits for
    that commit; should the database go down meanwhile, it is refused at once (``busy``),
    not after the commit timeout."""
    device = insert_device(db)[2]
    database = CuttableDatabase(database_url)
    shard = DeviceShard(0, ShardConfig(database_url=database_url, commit_timeout_s=10.0))
    shard._buffer = WriteBuffer(database.connect, retry_initial_s=0.05, retry_max_s=0.2)
    now = time.time()
    try:
        warm = await shard.ingest(device, minutes(now, 9), np.array([118.0]))
        assert warm.status == "ok"  # the device is loaded and the writer connected
        batch, values = minutes(now, 6, 5, 4), np.array([120.0, 121.0, 122.0])
        with psycopg.connect(database_url, autocommit=True) as locker:
            locker.execute("BEGIN; LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
            first = asyncio.create_task(shard.ingest(device, batch, values))
            await asyncio.sleep(0.5)  # its commit waits for the lock
            assert not first.done()
            started = time.monotonic()
            resent = asyncio.create_task(shard.ingest(device, batch, values))
            await asyncio.sleep(0.3)
            assert not resent.done()  # waiting for the first sending's commit
            database.cut(db)  # the database goes down: the commit's connection is cut
            outcome = await asyncio.wait_for(resent, COMMIT_TIMEOUT_S * 2)
            took = time.monotonic() - started
            assert (outcome.status, outcome.cause) == ("busy", "down")
            assert took < COMMIT_TIMEOUT_S / 4, took
            assert (await first).status == "busy"
            locker.execute("ROLLBACK")
        database.restore()  # back: the kept rows are committed, once
        deadline = time.monotonic() + 5
        while (again := await shard.ingest(device, batch, values)).status != "ok":
            assert time.monotonic() < deadline, again
            await asyncio.sleep(0.1)
        assert (again.accepted, again.duplicates) == (0, 3)
        assert stored_readings(db, device) == 4
    finally:
        await shard.close()


async def test_a_read_timing_out_never_closes_the_connection_under_another_read(
    database_url: str, db
) -> None:
    """The shard's reads share one connection. A batch whose device load waits past the
    commit timeout (the shard's start-up adoption holds the connection, blocked by a lock)
    is refused (``busy``), and the adoption's query, in flight on that connection, finishes
    normally. (Closing the connection for the timed-out read while the other query was in
    flight freed it under psycopg's C code: the shard died of a SIGSEGV.)"""
    active, later = insert_device(db)[2], insert_device(db)[2]
    first = DeviceShard(0, ShardConfig(database_url=database_url))
    try:
        assert (
            await first.ingest(active, minutes(time.time(), 2), np.array([110.0]))
        ).status == "ok"
    finally:
        await first.close()
    shard = DeviceShard(0, ShardConfig(database_url=database_url, commit_timeout_s=0.5))
    try:
        with psycopg.connect(database_url, autocommit=True) as locker:
            locker.execute("BEGIN; LOCK TABLE device_state IN ACCESS EXCLUSIVE MODE")
            starting = asyncio.create_task(shard.start())  # adoption: blocked by the lock
            await asyncio.sleep(0.3)
            started = time.monotonic()
            batch = (later, minutes(time.time(), 1), np.array([115.0]), None, False, None, None)
            (refused,) = await shard.ingest_many([batch])  # as the router calls it
            assert refused.status == "busy"
            assert time.monotonic() - started < 3.0
            assert not starting.done()
            locker.execute("ROLLBACK")
        assert await asyncio.wait_for(starting, 10) >= 1  # adopted, its query unharmed
        assert active in shard.devices
        again = await shard.ingest(later, minutes(time.time(), 1), np.array([115.0]))
        assert (again.status, again.accepted) == ("ok", 1)
    finally:
        await shard.close()
