"""The router's ingest calls on a shard's channel: taken there when the shard has one, through
Ray when it has none (a shard of an older release) or its channel cannot be reached, tried
again later; a channel that breaks under a call fails it with ``ShardUnavailable`` (retry)
and the next call opens a new one. Most tests stand in for the shards with handles of plain
objects (``ShardRouter.handle``'s seam) and a real ``ChannelServer`` on a real socket; the
two fallbacks are also run against real Ray actors (what a real handle does when its class
has no ``channel``), and a real ``DeviceShard`` whose channel ports are all taken stores its
uploads through Ray; tests/e2e/test_ingest.py kills a shard process under uploads on its
channel."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid

import numpy as np
import pytest
import ray

from actors.channel import Address, ChannelServer
from actors.ingest_call import IngestAnswers, IngestCall, IngestOutcome
from actors.router import ShardRouter, ShardUnavailable, shard_name, start_shard
from actors.shard import ShardConfig
from storage.embedded import free_port
from tests.helpers import insert_device


class Remote:
    def __init__(self, fn) -> None:
        self.fn = fn

    def remote(self, *args):
        return self.fn(*args)


class OldShard:
    """A handle to a shard without a channel: only Ray's ``ingest_packed``."""

    def __init__(self) -> None:
        self.ray_calls = 0
        self.ingest_packed = Remote(self._ingest)
        self.status = Remote(self._status)

    async def _ingest(self, call: IngestCall) -> IngestAnswers:
        self.ray_calls += 1
        return IngestAnswers.of([IngestOutcome("ok", accepted=int(n)) for n in call.sizes])

    async def _status(self) -> dict:
        return {"index": 0}


class NewShard(OldShard):
    """A handle to a shard with a channel (``address`` overrides where it says it is)."""

    def __init__(self) -> None:
        super().__init__()
        self.server = ChannelServer(self._ingest_on_channel)
        self.address: Address | None = None
        self.channel = Remote(self._channel)
        self.gate = asyncio.Event()
        self.gate.set()

    async def _ingest_on_channel(self, call: IngestCall) -> IngestAnswers:
        await self.gate.wait()
        return IngestAnswers.of([IngestOutcome("ok", accepted=int(n)) for n in call.sizes])

    async def _channel(self) -> Address:
        real = await self.server.start("127.0.0.1")
        return self.address or real


def router_with(handle: OldShard) -> ShardRouter:
    router = ShardRouter(1, shard_config=ShardConfig(database_url=""), hold_max_s=0.0)
    router._handles[0] = handle  # type: ignore[assignment]
    return router


async def upload(router: ShardRouter, readings: int = 2) -> IngestOutcome:
    ts = time.time_ns() // 1000 - np.arange(readings, dtype=np.int64)[::-1] * 60_000_000
    return await router.ingest(uuid.uuid4(), ts, np.full(readings, 110.0))


async def test_calls_go_on_the_channel_when_the_shard_has_one() -> None:
    shard = NewShard()
    router = router_with(shard)
    outcomes = await asyncio.gather(*(upload(router, 3) for _ in range(5)))
    assert [o.accepted for o in outcomes] == [3] * 5
    assert shard.ray_calls == 0 and router.channel_calls >= 1
    assert shard.server.calls == router.channel_calls
    shard.server.close()


async def test_a_shard_without_a_channel_is_called_through_ray_and_asked_again_later() -> None:
    shard = OldShard()
    router = router_with(shard)
    assert (await upload(router)).accepted == 2
    assert shard.ray_calls == 1 and router.channel_calls == 0
    router._no_channel_until[0] = 0.0  # the retry time has come: still none
    assert (await upload(router)).accepted == 2
    assert shard.ray_calls == 2


async def test_a_channel_that_cannot_be_reached_leaves_the_calls_to_ray(caplog) -> None:
    shard = NewShard()
    shard.address = Address("127.0.0.1", free_port(), bytes(32))  # nothing listens there
    router = router_with(shard)
    assert (await upload(router)).accepted == 2
    assert shard.ray_calls == 1 and router.channel_calls == 0
    assert "ingest channel at 127.0.0.1" in caplog.text and "through Ray for 60 s" in caplog.text
    shard.address = None  # reachable again once the retry time has come
    router._no_channel_until[0] = 0.0
    assert (await upload(router)).accepted == 2
    assert router.channel_calls == 1 and shard.ray_calls == 1
    shard.server.close()


async def test_a_channel_broken_under_a_call_fails_it_for_retry_and_is_opened_again() -> None:
    shard = NewShard()
    router = router_with(shard)
    assert (await upload(router)).accepted == 2
    shard.gate.clear()
    waiting = asyncio.ensure_future(upload(router))
    await asyncio.sleep(0.1)
    shard.server.close()  # the shard's process ended, or it closed its channel to move
    with pytest.raises(ShardUnavailable) as down:
        await asyncio.wait_for(waiting, 5)
    assert down.value.retry_after_s == ShardRouter.RETRY_AFTER_S
    assert 0 not in router._channels
    shard.gate.set()
    shard.server = ChannelServer(shard._ingest_on_channel)  # the shard's next incarnation
    router._handles[0] = shard  # type: ignore[assignment]  # found again (by Ray, in a stack)
    assert (await upload(router)).accepted == 2
    assert router._channels[0] is not None and shard.ray_calls == 0
    shard.server.close()


class RayOldShard:
    """A shard of an older release as a real Ray actor: ``ingest_packed`` and ``status``, and
    no ``channel``."""

    def __init__(self) -> None:
        self.calls = 0

    async def ingest_packed(self, call: IngestCall) -> IngestAnswers:
        self.calls += 1
        return IngestAnswers.of([IngestOutcome("ok", accepted=int(n)) for n in call.sizes])

    async def status(self) -> dict:
        return {"index": 0, "calls": self.calls}


class RayUnreachableShard(RayOldShard):
    """A real Ray actor whose channel is where nothing listens (a blocked port)."""

    def __init__(self, port: int) -> None:
        super().__init__()
        self.port = port

    async def channel(self) -> Address:
        return Address("127.0.0.1", self.port, bytes(32))


@pytest.mark.parametrize("kind", ["old", "unreachable"])
async def test_real_ray_shards_without_a_reachable_channel_are_called_through_ray(
    stack, caplog, kind: str
) -> None:
    namespace = f"channel-fallback-{uuid.uuid4().hex[:8]}"
    actor_class = ray.remote(num_cpus=0)(RayOldShard if kind == "old" else RayUnreachableShard)
    args = () if kind == "old" else (free_port(),)
    actor = actor_class.options(name=shard_name(0), namespace=namespace).remote(*args)
    try:
        await asyncio.wait_for(actor.status.remote(), 60)  # its process started, as a shard's
        router = ShardRouter(1, namespace=namespace, hold_max_s=0.0)
        outcomes = [await upload(router, 3) for _ in range(3)]
        assert [o.accepted for o in outcomes] == [3, 3, 3]
        assert router.channel_calls == 0 and 0 not in router._channels
        status = await actor.status.remote()
        assert status["calls"] == 3
        reached = "ingest channel at 127.0.0.1" in caplog.text
        assert reached is (kind == "unreachable"), caplog.text
        assert router._no_channel_until[0] > time.monotonic() + ShardRouter.CHANNEL_RETRY_S - 10
    finally:
        ray.kill(actor)


async def test_a_real_shard_that_could_not_listen_is_called_through_ray(
    stack, database_url: str, db, caplog
) -> None:
    """A ``DeviceShard`` actor whose channel ports are all taken on its node stores its uploads
    all the same, through Ray."""
    device = insert_device(db)[2]
    with socket.socket() as held:  # the range's one port, taken on every address
        held.bind(("0.0.0.0", 0))
        port = held.getsockname()[1]
        config = ShardConfig(database_url=database_url, shard_count=1, channel_ports=(port, port))
        namespace = f"channel-fallback-{uuid.uuid4().hex[:8]}"
        actor = start_shard(0, config, namespace)  # as vigil up and a replica start one
        try:
            await asyncio.wait_for(actor.status.remote(), 60)
            router = ShardRouter(1, namespace=namespace, hold_max_s=0.0)
            ts = time.time_ns() // 1000 - np.arange(2, dtype=np.int64)[::-1] * 60_000_000
            outcome = await router.ingest(device, ts, np.full(2, 110.0))
            assert outcome.accepted == 2
            assert router.channel_calls == 0
            assert (await actor.status.remote())["channel_calls"] == 0
            assert "shard 0 has no ingest channel; its ingest calls go through Ray for 60 s" in (
                caplog.text
            )
            stored = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device,))
            assert stored.fetchone()[0] == 2
        finally:
            ray.kill(actor)
