"""``ShardBalancer``: spreads the shards over the cluster's nodes again when nodes join.

When a node dies its shards start again on the survivors (``actors.router``); when nodes
join, nobody would move them back but an operator (``vigil shards rebalance``). The
balancer does it by itself. It is one detached Ray actor, not pinned to a node and restarted
by Ray without end, so losing any one node (its own included: Ray starts it on a survivor)
does not stop it; one instance, so no two passes race (and ``vigil shards scale`` and
``rebalance`` take the same database lock). The API replicas, although there are several on
different nodes, would each have to elect one of them first.

Every ``poll_s`` it reads Ray's node table. A node counts once it has been alive for
``settle_s`` without a break (a flapping node, which Ray gives a new id each time it comes
back, never does), and after a pass that moved shards the next waits ``cooldown_s``. A pass
computes the fewest moves that spread the running shards evenly
(``actors.placement.spread``) and makes each with the safe hand-over of
``actors.router.move_shard``: nothing acknowledged is lost, no alert is decided twice, and
the moving shard's uploads get 503 with a one-second Retry-After for the second or two it
takes.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, cast

import psycopg
import ray
from ray.actor import ActorHandle

from actors.placement import spread
from actors.router import _DETACHED, _wait_gone, alive_nodes, move_shard, shard_node
from actors.shard import ShardConfig
from storage.shard_layouts import active_layout_sync, moving_layout_sync, placement_lock

log = logging.getLogger(__name__)

BALANCER_NAME = "vigil-shard-balancer"


@dataclass(frozen=True, slots=True)
class BalancerConfig:
    shard: ShardConfig  # how moved shards are started (the shard count: the recorded one)
    namespace: str
    poll_s: float = 10.0
    settle_s: float = 60.0
    cooldown_s: float = 120.0


class NodeWatch:
    """Since when each alive node has been alive without a break, as seen by polling."""

    def __init__(self, settle_s: float) -> None:
        self.settle_s = settle_s
        self.since: dict[str, float] = {}

    def observe(self, alive: list[str], now: float) -> list[str]:
        """The nodes of ``alive`` (in its order) alive for ``settle_s`` by ``now``. A node
        missing from one poll starts again from zero when it is back."""
        self.since = {n: self.since.get(n, now) for n in alive}
        return [n for n in alive if now - self.since[n] >= self.settle_s]


class ShardBalancer:
    """Decorated with ``ray.remote`` by ``start_balancer``; ``step`` is plain Python."""

    def __init__(self, config: BalancerConfig, run: bool = True) -> None:
        self.config = config
        self.watch = NodeWatch(config.settle_s)
        self.moved_at = float("-inf")
        self.moves: list[dict[str, Any]] = []  # the latest moves, for ``status``
        self._stopped = threading.Event()
        if run:  # also when Ray restarts the actor on another node
            threading.Thread(target=self._run, name="shard-balancer", daemon=True).start()

    def _run(self) -> None:
        while not self._stopped.wait(self.config.poll_s):
            try:
                self.step(time.monotonic())
            except Exception:
                log.warning("shard rebalancing pass failed", exc_info=True)

    def step(self, now: float) -> list[int]:
        """One pass: move shards onto settled nodes if that evens them out; the shards
        moved. Skipped while another placement change (``vigil shards scale``) runs."""
        alive = alive_nodes()
        settled = set(self.watch.observe(alive, now))
        if len(alive) < 2 or now - self.moved_at < self.config.cooldown_s:
            return []
        url = self.config.shard.database_url
        with (
            psycopg.connect(url, autocommit=True) as conn,
            placement_lock(conn, wait=False) as held,
        ):
            if not held or moving_layout_sync(conn) is not None:
                return []
            layout = active_layout_sync(conn)
            count = layout.shard_count if layout else self.config.shard.shard_count
            current = [shard_node(i, self.config.namespace) for i in range(count)]
            hosts = [n for n in alive if n in settled or n in current]
            target = spread(current, hosts)
            moving = [i for i in range(count) if current[i] is not None and target[i] != current[i]]
            shard = replace(self.config.shard, shard_count=count)
            for i in moving:
                log.info("moving shard %d to node %s", i, target[i])
                placed = move_shard(i, cast(str, target[i]), shard, self.config.namespace)
                self.moves = [*self.moves[-19:], {"shard": i, "from": current[i], "to": placed}]
        if moving:
            self.moved_at = time.monotonic()
        return moving

    def status(self) -> dict[str, Any]:
        return {
            "nodes_watched": len(self.watch.since),
            "poll_s": self.config.poll_s,
            "settle_s": self.config.settle_s,
            "cooldown_s": self.config.cooldown_s,
            "moves": list(self.moves),
        }

    def stop(self) -> None:
        self._stopped.set()


def start_balancer(config: BalancerConfig) -> ActorHandle:
    """Create (or find) the cluster's shard balancer; it polls from its creation on."""
    remote_cls: Any = ray.remote(ShardBalancer)
    options = {**_DETACHED, "max_concurrency": 4}  # its thread polls; calls answer beside it
    return remote_cls.options(name=BALANCER_NAME, namespace=config.namespace, **options).remote(
        config
    )


def stop_balancer(namespace: str) -> None:
    """Stop the shard balancer, if one runs (before the shards: it must not move them)."""
    with contextlib.suppress(ValueError):
        ray.kill(ray.get_actor(BALANCER_NAME, namespace=namespace), no_restart=True)
        _wait_gone(BALANCER_NAME, namespace)  # so that a new one may take the name
