"""Device-to-shard mapping is stable and spreads devices evenly."""

from __future__ import annotations

import uuid
from collections import Counter

from actors.placement import VIRTUAL_SHARDS, shard_index, virtual_shard


def test_mapping_is_stable_across_processes() -> None:
    # Fixed expectations: a change here would move every device to another shard.
    device = uuid.UUID("12345678-1234-5678-1234-567812345678")
    assert virtual_shard(device) == virtual_shard(uuid.UUID(str(device)))
    assert 0 <= virtual_shard(device) < VIRTUAL_SHARDS
    assert shard_index(device, 1) == 0


def test_devices_spread_evenly_over_shards() -> None:
    counts = Counter(shard_index(uuid.uuid4(), 8) for _ in range(8000))
    assert set(counts) == set(range(8))
    assert max(counts.values()) < 1.2 * 1000 and min(counts.values()) > 0.8 * 1000
