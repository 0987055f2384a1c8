"""Which shard hosts a device: a stable hash, the same in every process and after restarts.

Every device hashes to one of ``VIRTUAL_SHARDS`` virtual shards; virtual shards map onto the
``shard_count`` Ray actors.
"""

from __future__ import annotations

import hashlib
from uuid import UUID

VIRTUAL_SHARDS = 4096


def virtual_shard(device_id: UUID) -> int:
    digest = hashlib.blake2b(device_id.bytes, digest_size=8).digest()
    return int.from_bytes(digest, "big") % VIRTUAL_SHARDS


def shard_index(device_id: UUID, shard_count: int) -> int:
    return virtual_shard(device_id) % shard_count


# -- a recorded layout: which shard hosts each virtual shard --------------------------------
#
# With no layout recorded, virtual shard ``v`` lives on shard ``v % shard_count`` (above).
# Changing the shard count records a layout that moves as few virtual shards as balance
# allows, so only the devices that must move do (``v % n`` would move most of them).


def default_layout(shard_count: int) -> list[int]:
    """The layout ``shard_index`` implies: virtual shard ``v`` on shard ``v % shard_count``."""
    return [v % shard_count for v in range(VIRTUAL_SHARDS)]


def rescale(layout: list[int], shard_count: int) -> list[int]:
    """``layout`` for ``shard_count`` shards: every shard ends with ``VIRTUAL_SHARDS //
    shard_count`` virtual shards or one more, and a virtual shard keeps its shard whenever
    that shard still exists and is not above its share."""
    base, extra = divmod(VIRTUAL_SHARDS, shard_count)
    share = [base + (1 if s < extra else 0) for s in range(shard_count)]
    held = [0] * shard_count
    out = [-1] * len(layout)
    for v, s in enumerate(layout):
        if s < shard_count and held[s] < share[s]:
            out[v], held[s] = s, held[s] + 1
    short = (s for s in range(shard_count) for _ in range(share[s] - held[s]))
    return [s if s >= 0 else next(short) for s in out]


def shard_in(layout: list[int], device_id: UUID) -> int:
    """The shard hosting a device under ``layout``."""
    return layout[virtual_shard(device_id)]


# -- which node runs each shard ------------------------------------------------------------
#
# Shards are spread over the nodes so that no node runs more than one shard above any other.
# A change of nodes moves as few shards as that allows: a shard stays where it runs unless its
# node is gone or holds more than its share (a joining node takes shards only from the
# fullest nodes, never shuffles the others).


def spread(current: list[str | None], nodes: list[str]) -> list[str | None]:
    """The node each shard should run on, given where each runs now (None: not running, left
    to whoever starts it) and the nodes that may host shards (in a stable order, the tie
    break). A running shard whose node is not in ``nodes`` moves to the emptiest one."""
    if not nodes:
        return list(current)
    target: list[str | None] = list(current)
    load = {n: sum(1 for t in target if t == n) for n in nodes}
    for i, t in enumerate(target):
        if t is not None and t not in load:  # its node is gone or may not host shards
            node = _emptiest(load)
            target[i], load[node] = node, load[node] + 1
    while max(load.values()) - min(load.values()) > 1:
        full, empty = max(load, key=load.__getitem__), _emptiest(load)
        moving = max(i for i, t in enumerate(target) if t == full)
        target[moving], load[full], load[empty] = empty, load[full] - 1, load[empty] + 1
    return target


def _emptiest(load: dict[str, int]) -> str:
    return min(load, key=load.__getitem__)  # the first in node order among equals
