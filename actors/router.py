"""From device id to the shard actor hosting it.

Every device hashes (stably, across processes and restarts: ``actors.placement``) to one of
the ``shard_count`` Ray actors named ``vigil-shard-<i>``. Shards are detached and restarted
by Ray on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
from uuid import UUID

import numpy as np
import ray
from ray.actor import ActorHandle

from actors.notifier import NOTIFIER_NAME, AlertNotifier, NotifierConfig
from actors.placement import shard_index
from actors.shard import DeviceShard, IngestOutcome, ShardConfig

NAMESPACE = "vigil"


def shard_name(index: int) -> str:
    return f"vigil-shard-{index}"


# Detached (outlive the driver), restarted by Ray without end, async with room for many
# concurrent calls, and taking no CPU slot from the scheduler.
_DETACHED = {
    "lifetime": "detached",
    "get_if_exists": True,
    "max_restarts": -1,
    "max_task_retries": 3,
    "max_concurrency": 1000,
    "num_cpus": 0,
}


def start_shards(
    shard_count: int, config: ShardConfig, namespace: str = NAMESPACE
) -> list[ActorHandle]:
    """Create (or find, if already running) the shard actors; requires ``ray.init`` first."""
    remote_cls = ray.remote(DeviceShard)
    return [
        remote_cls.options(name=shard_name(i), namespace=namespace, **_DETACHED).remote(i, config)
        for i in range(shard_count)
    ]


def stop_shards(shard_count: int, namespace: str = NAMESPACE) -> None:
    """Stop the shard actors (and the alert notifier, if one was started)."""
    for name in [*(shard_name(i) for i in range(shard_count)), NOTIFIER_NAME]:
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)


def start_notifier(config: NotifierConfig, namespace: str = NAMESPACE) -> ActorHandle:
    """Create (or find) the cluster's alert notifier; call ``start`` on it to make sure it
    listens."""
    remote_cls = ray.remote(AlertNotifier)
    return remote_cls.options(name=NOTIFIER_NAME, namespace=namespace, **_DETACHED).remote(config)


_Pending = tuple[UUID, np.ndarray, np.ndarray, int | None, str | None, asyncio.Future]


class ShardRouter:
    """Used inside API replicas: finds shard actors by name and forwards device batches.

    Batches for one shard travel together: while a call to a shard is in flight, the batches
    that arrive for it wait and then go in one ``ingest_many`` call (as the write buffer
    does with commits), so many small uploads cost one actor call, not one each, and an
    idle shard is called at once.
    """

    MAX_PER_CALL = 512

    def __init__(self, shard_count: int, namespace: str = NAMESPACE) -> None:
        self.shard_count = shard_count
        self.namespace = namespace
        self._handles: dict[int, ActorHandle] = {}
        self._pending: dict[int, list[_Pending]] = {}
        self._senders: dict[int, asyncio.Task] = {}

    def handle(self, index: int) -> ActorHandle:
        found = self._handles.get(index)
        if found is None:
            found = ray.get_actor(shard_name(index), namespace=self.namespace)
            self._handles[index] = found
        return found

    def for_device(self, device_id: UUID) -> ActorHandle:
        return self.handle(shard_index(device_id, self.shard_count))

    async def ingest(
        self,
        device_id: UUID,
        ts_us: np.ndarray,
        values: np.ndarray,
        received_us: int | None = None,
        request_id: str | None = None,
    ) -> IngestOutcome:
        """``received_us``: when Vigil received the batch (its alerts carry it);
        ``request_id``: the HTTP request's, for the shard's logs and the alerts' NOTIFY."""
        index = shard_index(device_id, self.shard_count)
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.setdefault(index, []).append(
            (device_id, ts_us, values, received_us, request_id, future)
        )
        sender = self._senders.get(index)
        if sender is None or sender.done():
            self._senders[index] = asyncio.get_running_loop().create_task(self._send(index))
        return await future

    async def _send(self, index: int) -> None:
        queue = self._pending[index]
        while queue:
            batch = queue[: self.MAX_PER_CALL]
            del queue[: len(batch)]
            try:
                outcomes = await self.handle(index).ingest_many.remote([item[:5] for item in batch])
            except Exception as exc:
                self._handles.pop(index, None)  # looked up again: the actor may be new
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (*_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def start_all(self) -> list[int]:
        """Ask every shard to make sure its clock runs and it hosts its recently active
        devices (a shard Ray restarted has neither until asked); devices hosted per shard."""
        calls = [self.handle(i).start.remote() for i in range(self.shard_count)]
        return list(await asyncio.gather(*calls))

    async def statuses(self, timeout_s: float = 2.0) -> list[dict]:
        """Every shard's status; raises if any is unreachable within the timeout."""
        calls = [self.handle(i).status.remote() for i in range(self.shard_count)]
        return list(await asyncio.wait_for(asyncio.gather(*calls), timeout_s))
