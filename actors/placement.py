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
