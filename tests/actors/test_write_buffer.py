"""Group commit against a real PostgreSQL: batching, idempotence, database outage, back-pressure."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import psycopg
import pytest

from actors.write_buffer import Backpressure, WriteBuffer
from storage.pools import open_writer_connection
from storage.readings import DeviceRows
from tests.helpers import CuttableDatabase, insert_device, stored_readings

US = 1_000_000
T0 = 1_790_000_000 * US


def rows(device_id: uuid.UUID, start: int, n: int) -> DeviceRows:
    ts = T0 + (np.arange(start, start + n, dtype=np.int64) * 60 * US)
    return DeviceRows(device_id, ts, np.full(n, 100.0), np.full(n, np.nan), ["Flat"] * n)


@pytest.fixture
def device(db: psycopg.Connection) -> uuid.UUID:
    return insert_device(db)[2]


async def test_concurrent_batches_share_commits_and_duplicates_are_reported(
    database_url: str, db, device
) -> None:
    buffer = WriteBuffer(lambda: open_writer_connection(database_url))
    futures = [buffer.submit(rows(device, i * 10, 10)) for i in range(20)]
    masks = await asyncio.gather(*futures)
    assert all(m.all() for m in masks)
    assert buffer.commits < 20  # batches that arrived together were committed together
    again = await buffer.submit(rows(device, 5, 10))  # all ten stored already
    assert again.sum() == 0
    assert stored_readings(db, device) == 200
    await buffer.close()


async def test_commits_start_at_least_the_interval_apart_unless_a_full_commit_waits(
    database_url: str, db, device
) -> None:
    interval = 0.5
    buffer = WriteBuffer(
        lambda: open_writer_connection(database_url),
        max_commit_rows=100,
        min_commit_interval_s=interval,
    )
    started = time.monotonic()
    assert (await buffer.submit(rows(device, 0, 10))).all()
    first = time.monotonic() - started
    assert first < interval  # an idle buffer commits at once
    # Batches arriving during the interval wait for its end and share one commit.
    futures = []
    for i in range(1, 6):
        futures.append(buffer.submit(rows(device, i * 10, 10)))
        await asyncio.sleep(0.02)
    masks = await asyncio.gather(*futures)
    assert all(m.all() for m in masks)
    assert time.monotonic() - started >= interval
    assert buffer.commits == 2
    # A full commit's worth (100 rows) goes without waiting out the interval.
    before = time.monotonic()
    assert (await buffer.submit(rows(device, 60, 100))).all()
    assert time.monotonic() - before < interval
    assert buffer.commits == 3
    assert stored_readings(db, device) == 160
    await buffer.close()


async def test_the_pacing_ends_once_enough_rows_wait(database_url: str, db, device) -> None:
    """Rows arriving during the interval end it as soon as ``pace_rows`` of them wait: large
    uploads, whose senders wait for each answer, are not held back by the pacing."""
    interval = 5.0
    buffer = WriteBuffer(
        lambda: open_writer_connection(database_url), min_commit_interval_s=interval, pace_rows=50
    )
    assert (await buffer.submit(rows(device, 0, 10))).all()  # idle: at once
    started = time.monotonic()
    futures = []
    for i in range(1, 5):  # 40 rows: below pace_rows, the commit waits
        futures.append(buffer.submit(rows(device, i * 10, 10)))
        await asyncio.sleep(0.05)
    assert not any(f.done() for f in futures) and buffer.commits == 1
    futures.append(buffer.submit(rows(device, 50, 10)))  # 50 rows wait: it goes now
    masks = await asyncio.wait_for(asyncio.gather(*futures), interval / 2)
    assert all(m.all() for m in masks)
    assert time.monotonic() - started < interval / 2
    assert buffer.commits == 2
    assert stored_readings(db, device) == 60
    await buffer.close()


async def test_database_outage_keeps_rows_then_commits_them(database_url: str, db, device) -> None:
    reachable = asyncio.Event()

    async def connect() -> psycopg.AsyncConnection:
        if not reachable.is_set():
            raise psycopg.OperationalError("connection refused (simulated outage)")
        return await open_writer_connection(database_url)

    buffer = WriteBuffer(connect, max_buffered_rows=25, retry_initial_s=0.05, retry_max_s=0.1)
    pending = buffer.submit(rows(device, 0, 20))
    await asyncio.sleep(0.3)
    assert not pending.done() and not buffer.database_ok
    assert buffer.buffered_rows == 20
    with pytest.raises(Backpressure):
        buffer.submit(rows(device, 100, 10))  # over the bound: refused, not dropped later
    assert stored_readings(db, device) == 0
    reachable.set()
    mask = await asyncio.wait_for(pending, 5)
    assert mask.all() and buffer.database_ok and buffer.buffered_rows == 0
    assert stored_readings(db, device) == 20
    await buffer.close()


async def test_a_batch_the_database_refuses_fails_alone(database_url: str, db, device) -> None:
    buffer = WriteBuffer(lambda: open_writer_connection(database_url))
    ghost = uuid.uuid4()  # no such device: the foreign key refuses it
    good, bad = buffer.submit(rows(device, 0, 5)), buffer.submit(rows(ghost, 0, 5))
    results = await asyncio.gather(good, bad, return_exceptions=True)
    assert results[0].all()
    assert isinstance(results[1], psycopg.errors.ForeignKeyViolation)
    assert stored_readings(db, device) == 5
    await buffer.close()


async def test_a_full_disk_is_named_and_waiting_rows_are_found_by_device(
    database_url: str, db, device
) -> None:
    """PostgreSQL's 53100 keeps the rows (as an outage does) and is the cause a refused
    client is told; ``waiting_for`` finds a device's rows not committed yet."""
    space = asyncio.Event()

    async def connect() -> psycopg.AsyncConnection:
        if not space.is_set():
            raise psycopg.errors.DiskFull("could not extend file: No space left on device")
        return await open_writer_connection(database_url)

    buffer = WriteBuffer(connect, retry_initial_s=0.05, retry_max_s=0.1)
    pending = buffer.submit(rows(device, 0, 5))
    for _ in range(100):
        if buffer.cause:
            break
        await asyncio.sleep(0.05)
    assert buffer.cause == "disk_full" and not buffer.database_ok
    assert buffer.waiting_for(device) == [pending]
    assert buffer.waiting_for(uuid.uuid4()) == []
    space.set()
    assert (await asyncio.wait_for(pending, 5)).all()
    assert buffer.cause == "" and buffer.waiting_for(device) == []
    assert stored_readings(db, device) == 5
    await buffer.close()


async def test_a_waiter_from_before_a_successful_commit_hears_of_the_next_outage(
    database_url: str, db, device
) -> None:
    """A batch takes the down signal while an earlier commit is under way; that commit
    succeeds and the batch's own commit fails (the database stopped between the two): the
    batch must hear of the outage at once, not wait out the commit timeout (a drill saw a
    refusal take 10 s when a success replaced the signal its waiters held)."""
    database = CuttableDatabase(database_url)
    buffer = WriteBuffer(database.connect, retry_initial_s=0.05, retry_max_s=0.1)
    down = buffer.down_signal()  # taken by a batch before the next commit
    assert (await buffer.submit(rows(device, 0, 5))).all()  # that commit succeeds
    assert not down.done() and buffer.database_ok
    database.cut(db)  # the server went away
    pending = buffer.submit(rows(device, 5, 5))
    await asyncio.wait_for(asyncio.shield(down), 2)  # the signal the batch holds fires
    assert not pending.done() and not buffer.database_ok and buffer.down_signal() is down
    database.restore()
    assert (await asyncio.wait_for(pending, 5)).all()  # kept, then committed
    assert buffer.down_signal() is not down  # a new signal for the next outage
    assert stored_readings(db, device) == 10
    await buffer.close()
