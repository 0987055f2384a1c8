"""Device-to-shard mapping is stable and spreads devices evenly."""

from __future__ import annotations

import uuid
from collections import Counter

import pytest

from actors.placement import (
    VIRTUAL_SHARDS,
    default_layout,
    rescale,
    shard_in,
    shard_index,
    virtual_shard,
)


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


@pytest.mark.parametrize(("before", "after"), [(2, 3), (3, 4), (4, 3), (4, 8), (8, 2), (3, 3)])
def test_rescaling_moves_only_what_balance_requires(before: int, after: int) -> None:
    old = default_layout(before)
    new = rescale(old, after)
    counts = Counter(new)
    assert set(counts) == set(range(after))
    assert max(counts.values()) - min(counts.values()) <= 1
    moved = sum(a != b for a, b in zip(old, new, strict=True))
    # The least any balanced layout can move: what old shards hold above their new share.
    share = VIRTUAL_SHARDS // after
    must = sum(max(0, c - share - 1) if s < after else c for s, c in Counter(old).items())
    assert must <= moved <= must + after
    if before == after:
        assert moved == 0


def test_a_layout_maps_a_device_as_the_hash_does_until_rescaled() -> None:
    device = uuid.uuid4()
    assert shard_in(default_layout(5), device) == shard_index(device, 5)
