"""From device id to the shard actor hosting it.

Every device hashes (stably, across processes and restarts) to one of ``VIRTUAL_SHARDS``
virtual shards; virtual shards map onto the ``shard_count`` Ray actors named
``vigil-shard-<i>``. Shards are detached and restarted by Ray on failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from uuid import UUID

import numpy as np
import ray
from ray.actor import ActorHandle

from actors.notifier import NOTIFIER_NAME, AlertNotifier, NotifierConfig
from actors.shard import DeviceShard, IngestOutcome, ShardConfig

VIRTUAL_SHARDS = 4096
NAMESPACE = "vigil"


def virtual_shard(device_id: UUID) -> int:
    digest = hashlib.blake2b(device_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % VIRTUAL_SHARDS


def shard_index(device_id: UUID, shard_count: int) -> int:
    return virtual_shard(device_id) % shard_count


def shard_name(index: int) -> str:
    return f"vigil-shard-{index}"


def start_shards(
    shard_count: int, config: ShardConfig, namespace: str = NAMESPACE
) -> list[ActorHandle]:
    """Create (or find, if already running) the shard actors; requires ``ray.init`` first."""
    remote_cls = ray.remote(DeviceShard)
    return [
        remote_cls.options(
            name=shard_name(i),
            namespace=namespace,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=3,
            max_concurrency=1000,
            num_cpus=0,
        ).remote(i, config)
        for i in range(shard_count)
    ]


def stop_shards(shard_count: int, namespace: str = NAMESPACE) -> None:
    """Stop the shard actors (and the alert notifier, if one was started)."""
    for name in [*(shard_name(i) for i in range(shard_count)), NOTIFIER_NAME]:
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)


def start_notifier(config: NotifierConfig, namespace: str = NAMESPACE) -> ActorHandle:
    """Create (or find) the cluster's alert notifier and make sure it is listening."""
    handle = (
        ray.remote(AlertNotifier)
        .options(
            name=NOTIFIER_NAME,
            namespace=namespace,
            lifetime="detached",
            get_if_exists=True,
            max_restarts=-1,
            max_task_retries=3,
            max_concurrency=1000,
            num_cpus=0,
        )
        .remote(config)
    )
    handle.start.remote()
    return handle


class ShardRouter:
    """Used inside API replicas: finds shard actors by name and forwards device batches."""

    def __init__(self, shard_count: int, namespace: str = NAMESPACE) -> None:
        self.shard_count = shard_count
        self.namespace = namespace
        self._handles: dict[int, ActorHandle] = {}

    def handle(self, index: int) -> ActorHandle:
        found = self._handles.get(index)
        if found is None:
            found = ray.get_actor(shard_name(index), namespace=self.namespace)
            self._handles[index] = found
        return found

    def for_device(self, device_id: UUID) -> ActorHandle:
        return self.handle(shard_index(device_id, self.shard_count))

    async def ingest(self, device_id: UUID, ts_us: np.ndarray, values: np.ndarray) -> IngestOutcome:
        return await self.for_device(device_id).ingest.remote(device_id, ts_us, values)

    async def statuses(self, timeout_s: float = 2.0) -> list[dict]:
        """Every shard's status; raises if any is unreachable within the timeout."""
        calls = [self.handle(i).status.remote() for i in range(self.shard_count)]
        return list(await asyncio.wait_for(asyncio.gather(*calls), timeout_s))
