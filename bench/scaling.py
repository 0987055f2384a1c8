"""Shard scaling benchmark: committed readings/s per shard as shards are added, on a local
multi-node Ray cluster (``ray.cluster_utils.Cluster``: one raylet per node, on this machine).

For 1, 2, ... ``--max-shards`` shards (one per node, placed as Vigil places them), a driver
sends device batches straight to the shards' ``ingest_many`` (the path that holds device
state and commits; the API replicas in front are stateless and scale on their own) for
``--seconds`` and counts the readings the shards acknowledged after commit. Flat per-shard
throughput means no central bottleneck; on a machine with fewer free cores than shards the
per-shard figure falls because the cores run out, which the run reports beside it (CPU
count and load average measured in the same run). The n=1 figure is the yardstick.

    .venv/bin/python -m bench.scaling [--max-shards 3] [--seconds 10] [--devices 300]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
import uuid

import asyncpg
import numpy as np

BATCH = 100  # readings per device per call
STEP_S = 300


async def make_devices(url: str, count: int) -> list[uuid.UUID]:
    from storage.accounts import create_user
    from storage.devices import create_device
    from storage.profiles import self_profile_id

    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    try:
        user = await create_user(pool, f"scale-{uuid.uuid4().hex}@example.com", "x", "Bench")
        profile = await self_profile_id(pool, user["id"])
        return [
            (await create_device(pool, profile, "glucose", f"S{i}", None, STEP_S))["id"]
            for i in range(count)
        ]
    finally:
        await pool.close()


async def drive(shards: list, next_ts: dict[uuid.UUID, int], seconds: float) -> int:
    """Readings acknowledged in ``seconds``: per shard, one call in flight at a time carrying
    a batch for each of up to 32 of its devices (as the API's router coalesces them)."""
    from actors.placement import shard_index

    mine: dict[int, list[uuid.UUID]] = {}
    for d in next_ts:
        mine.setdefault(shard_index(d, len(shards)), []).append(d)
    deadline = time.monotonic() + seconds
    accepted = 0

    async def loop(index: int) -> None:
        nonlocal accepted
        group, k = mine.get(index, []), 0
        while time.monotonic() < deadline and group:
            calls = []
            for d in group[k : k + 32] or group[:32]:
                ts = next_ts[d] + STEP_S * np.arange(BATCH, dtype=np.int64)
                next_ts[d] = int(ts[-1]) + STEP_S
                values = 100 + 20 * np.sin(ts / 3600.0)
                calls.append((d, ts * 1_000_000, values, None, False, None, None))
            k = (k + 32) % max(len(group), 1)
            outcomes = await shards[index].ingest_many.remote(calls)
            accepted += sum(o.accepted for o in outcomes)

    await asyncio.gather(*(loop(i) for i in range(len(shards))))
    return accepted


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--max-shards", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--devices", type=int, default=300)
    args = parser.parse_args()
    os.environ["RAY_TMPDIR"] = tempfile.mkdtemp(prefix="vb-", dir="/tmp")  # not /tmp/ray

    import ray
    from ray.cluster_utils import Cluster

    from actors.router import start_shards, stop_shards
    from actors.shard import ShardConfig
    from storage.embedded import throwaway_postgres
    from storage.migrate import migrate

    with throwaway_postgres("vigil-bench-") as db:
        migrate(db.url())
        cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
        for _ in range(args.max_shards - 1):
            cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        ray.init(address=cluster.address, log_to_driver=False)
        try:
            base = None
            for n in range(1, args.max_shards + 1):
                devices = asyncio.run(make_devices(db.url(), args.devices))
                # New devices each run, their readings from 20 days ago on (each device
                # gets far fewer than 20 days' worth in a run, so none reach the present).
                next_ts = dict.fromkeys(devices, int(time.time()) - 20 * 86_400)
                namespace = f"scaling-{n}-{uuid.uuid4().hex[:6]}"
                shards = start_shards(n, ShardConfig(db.url(), shard_count=n), namespace)
                ray.get([s.start.remote() for s in shards])
                asyncio.run(drive(shards, next_ts, 2.0))  # warm-up: device state loaded
                cpu0 = time.process_time()
                got = asyncio.run(drive(shards, next_ts, args.seconds))
                per_shard = got / args.seconds / n
                base = base or per_shard
                print(
                    f"shards={n} readings_per_s={got / args.seconds:,.0f}"
                    f" per_shard={per_shard:,.0f} ({per_shard / base:.2f} of 1 shard)"
                    f" driver_cpu_s={time.process_time() - cpu0:.1f}"
                    f" cpus={os.cpu_count()} load1={os.getloadavg()[0]:.1f}"
                )
                stop_shards(n, namespace)
        finally:
            ray.shutdown()
            cluster.shutdown()


if __name__ == "__main__":
    main()
