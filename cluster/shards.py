"""Changing the number of shards of a running Vigil (``vigil shards scale N``).

The new layout (``actors.placement.rescale``: only the virtual shards that balance requires
move) is recorded as *moving*: from then on a device whose shard changes belongs to neither
shard, so its uploads answer 503 with a one-second Retry-After. Every shard re-reads the
layouts and hands such devices over (waits for their calls under way and for their rows to
be committed, then forgets them). The layout then becomes *active*, the shards re-read it,
and the new shards load the moved devices, alert state included, from the database on
their next message. Shards beyond a smaller count are stopped last.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import psycopg
import ray

from actors.placement import default_layout, rescale
from actors.router import rebalance_shards, shard_name, start_shards
from actors.shard import ShardConfig
from storage.shard_layouts import activate, active_layout_sync, placement_lock, record_moving

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ScaleResult:
    before: int
    after: int
    virtual_moved: int
    devices_handed_over: int


def scale_shards(configured: ShardConfig, new_count: int, namespace: str) -> ScaleResult:
    """Move the running shards to ``new_count``; ``configured``: the shards' configuration,
    whose ``shard_count`` is the count in use when no layout is recorded yet (the shards
    started keep the rest of it). Requires ``ray.init`` first."""
    database_url, configured_count = configured.database_url, configured.shard_count
    if new_count < 1:
        raise ValueError("the shard count must be at least 1")
    with psycopg.connect(database_url, autocommit=True) as conn, placement_lock(conn):
        current = active_layout_sync(conn)
        before = current.shard_count if current else configured_count
        old = current.assignment if current else default_layout(before)
        new = rescale(old, new_count)
        epoch = record_moving(conn, new_count, new)
        config = replace(configured, shard_count=new_count)
        shards = start_shards(max(before, new_count), config, namespace)
        handed = sum(ray.get([s.refresh_layout.remote() for s in shards]))
        activate(conn, epoch)
        ray.get([s.refresh_layout.remote() for s in shards[:new_count]])
        for index in range(new_count, before):
            ray.kill(ray.get_actor(shard_name(index), namespace=namespace), no_restart=True)
    moved = sum(a != b for a, b in zip(old, new, strict=True))
    log.info("shards %d -> %d: %d virtual shards moved", before, new_count, moved)
    return ScaleResult(before, new_count, moved, handed)


def rebalance(database_url: str, config: ShardConfig, namespace: str) -> list[int]:
    """``vigil shards rebalance``: spread the shards over the alive nodes now (the balancer,
    ``actors.balancer``, does the same by itself when VIGIL_SHARD_REBALANCE=true), holding
    the placement lock so no scaling or automatic pass runs meanwhile; the shards moved."""
    with psycopg.connect(database_url, autocommit=True) as conn, placement_lock(conn):
        return rebalance_shards(config.shard_count, config, namespace)
