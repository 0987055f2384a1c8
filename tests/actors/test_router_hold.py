"""The router holds a call to a busy shard a few milliseconds to carry more batches:
bounded, only while batches come often, never for a lone upload. Against the running
stack's real shards and database."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import psycopg

from actors.ingest_call import IngestAnswers, IngestCall
from actors.placement import shard_index
from actors.router import ShardRouter
from actors.shard import IngestOutcome
from tests.helpers import insert_device

US = 1_000_000


class CountingRouter(ShardRouter):
    """The real router, noting how many batches each ``ingest_packed`` call carried."""

    def __init__(self, stack, hold_max_s: float) -> None:
        super().__init__(2, stack.settings.namespace, hold_max_s=hold_max_s)
        self.carried: list[int] = []

    async def ingest_call(
        self, index: int, call: IngestCall, deadline_s: float | None = None
    ) -> IngestAnswers:
        self.carried.append(len(call))
        return await super().ingest_call(index, call, deadline_s=deadline_s)


def devices_of_shard_0(db: psycopg.Connection, n: int) -> list[uuid.UUID]:
    found: list[uuid.UUID] = []
    while len(found) < n:
        device = insert_device(db)[2]
        if shard_index(device, 2) == 0:
            found.append(device)
    return found


async def upload(router: ShardRouter, device: uuid.UUID, minutes_ago: int) -> IngestOutcome:
    ts = np.array([int((time.time() - 60 * minutes_ago) * US)], dtype=np.int64)
    return await router.ingest(device, ts, np.array([120.0]))


def test_the_hold_follows_how_often_batches_come_and_is_capped() -> None:
    router = ShardRouter(2, hold_max_s=1.0)  # asks for more than the cap
    assert router.hold_max_s == ShardRouter.MAX_HOLD_S
    assert router.hold_for(0) == 0.0  # nothing came yet: no hold
    router._last_call[0] = (time.monotonic(), 1)  # a lone batch just now: no hold
    assert router.hold_for(0) == 0.0
    router._last_call[0] = (time.monotonic(), 12)  # a shared call just now: busy
    assert router.hold_for(0) == ShardRouter.MAX_HOLD_S
    assert router.hold_for(1) == 0.0  # per shard
    router._last_call[0] = (time.monotonic() - ShardRouter.BUSY_WITHIN_S, 12)  # quiet since
    assert router.hold_for(0) == 0.0
    assert ShardRouter(2, hold_max_s=0.0).hold_for(0) == 0.0


async def test_a_lone_upload_is_not_held(stack, db: psycopg.Connection) -> None:
    router = CountingRouter(stack, hold_max_s=ShardRouter.MAX_HOLD_S)
    (device,) = devices_of_shard_0(db, 1)
    for minutes in (3, 2, 1):
        outcome = await upload(router, device, minutes)
        assert (outcome.status, outcome.accepted) == ("ok", 1)
        await asyncio.sleep(0.2)
    assert router.carried == [1, 1, 1]
    assert router.holds.calls == 0


async def test_frequent_batches_share_held_calls_and_all_are_stored(
    stack, db: psycopg.Connection
) -> None:
    router = CountingRouter(stack, hold_max_s=ShardRouter.MAX_HOLD_S)
    devices = devices_of_shard_0(db, 30)
    uploads = []
    for minutes in range(5, 0, -1):  # five rounds of every device, batch after batch
        for device in devices:
            uploads.append(asyncio.ensure_future(upload(router, device, minutes)))
            await asyncio.sleep(0)  # the next batch comes a moment later, not with this one
        await asyncio.gather(*uploads[-len(devices) :])
    outcomes = await asyncio.gather(*uploads)
    assert [(o.status, o.accepted) for o in outcomes] == [("ok", 1)] * 150
    assert sum(router.carried) == 150
    assert len(router.carried) < 150 / 4  # many batches per call
    assert router.holds.calls >= 1 and router.holds.joined >= 1
    # Bounded: 50 ms asked; the margin is for a busy 2-core machine's event loop.
    assert router.holds.longest_s < ShardRouter.MAX_HOLD_S + 0.25
    stored = db.execute(
        "SELECT count(*) FROM readings WHERE device_id = ANY(%s)", (devices,)
    ).fetchone()
    assert stored == (150,)
