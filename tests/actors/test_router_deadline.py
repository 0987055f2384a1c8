"""An ingest waits for its shard within a deadline, also behind a slow call: a batch still
queued when it passes is never sent and its caller is told to retry (``ShardTooSlow``); a
caller that goes away leaves its batch to be stored and every other caller its answer.
The shard is stood in for by the router's ``ingest_call`` seam (no Ray)."""

from __future__ import annotations

import asyncio
import time
import uuid

import numpy as np
import pytest

from actors.ingest_call import IngestAnswers, IngestCall
from actors.router import ShardRouter, ShardTooSlow
from actors.shard import IngestOutcome, ShardConfig


class SlowShardRouter(ShardRouter):
    """One shard whose ``ingest_packed`` answers only when the test opens its gate."""

    INGEST_MARGIN_S = 0.2

    def __init__(self) -> None:
        config = ShardConfig(database_url="", commit_timeout_s=0.3)
        super().__init__(1, shard_config=config, hold_max_s=0.0)
        self.gate = asyncio.Event()
        self.calls: list[list[uuid.UUID]] = []

    async def ingest_call(
        self, index: int, call: IngestCall, deadline_s: float | None = None
    ) -> IngestAnswers:
        batches = call.batches()
        self.calls.append([b[0] for b in batches])
        await self.gate.wait()
        return IngestAnswers.of([IngestOutcome("ok", accepted=len(b[1])) for b in batches])


async def upload(router: ShardRouter, device: uuid.UUID) -> IngestOutcome:
    ts = np.array([time.time_ns() // 1000], dtype=np.int64)
    return await router.ingest(device, ts, np.array([120.0]))


async def test_a_batch_queued_past_its_deadline_is_never_sent_and_told_to_retry() -> None:
    router = SlowShardRouter()
    first, queued = uuid.uuid4(), uuid.uuid4()
    in_call = asyncio.create_task(upload(router, first))
    await asyncio.sleep(0.05)  # its call is under way (the gate is shut)
    started = time.monotonic()
    with pytest.raises(ShardTooSlow) as slow:
        await upload(router, queued)  # behind it
    took = time.monotonic() - started
    assert router.ingest_deadline_s - 0.05 <= took < router.ingest_deadline_s + 0.5, took
    assert slow.value.retry_after_s == ShardRouter.RETRY_AFTER_S
    with pytest.raises(ShardTooSlow):
        await in_call  # in the call past the deadline: told to retry too
    router.gate.set()
    await asyncio.sleep(0.05)
    assert router.calls == [[first]]  # the queued batch was never sent
    assert router._pending[0] == []


async def test_a_caller_gone_leaves_its_batch_sent_and_others_answered() -> None:
    router = SlowShardRouter()
    devices = [uuid.uuid4() for _ in range(4)]
    blocker = asyncio.create_task(upload(router, devices[0]))
    await asyncio.sleep(0.05)
    waiting = [asyncio.create_task(upload(router, d)) for d in devices[1:]]
    await asyncio.sleep(0.05)
    waiting[0].cancel()  # its client went away
    await asyncio.sleep(0.01)
    router.gate.set()
    outcomes = await asyncio.gather(blocker, *waiting[1:])
    assert [o.status for o in outcomes] == ["ok"] * 3
    assert waiting[0].cancelled()
    assert router.calls == [[devices[0]], devices[1:]]  # the gone caller's batch went too
