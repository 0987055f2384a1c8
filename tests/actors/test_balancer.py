"""Where shards should run (``actors.placement.spread``) and when a node counts as joined
(``actors.balancer.NodeWatch``): the pure decisions of the automatic shard balancer. The
balancer on a real multi-node cluster: tests/cluster/test_rebalance_auto.py."""

from __future__ import annotations

from collections import Counter

import pytest

from actors.balancer import NodeWatch
from actors.placement import spread


def test_a_joining_node_takes_shards_only_from_the_fullest() -> None:
    # Node "c" died; its shard 2 restarted on "a". Node "d" joins.
    current: list[str | None] = ["a", "b", "a"]
    target = spread(current, ["a", "b", "d"])
    assert Counter(target) == {"a": 1, "b": 1, "d": 1}
    assert [i for i, (c, t) in enumerate(zip(current, target, strict=True)) if c != t] == [2]


def test_balanced_shards_stay_put() -> None:
    current: list[str | None] = ["b", "a", "c", "a"]
    assert spread(current, ["a", "b", "c"]) == current


def test_shards_of_a_gone_node_go_to_the_emptiest() -> None:
    target = spread(["a", "x", "b", "a"], ["a", "b"])
    assert Counter(target) == {"a": 2, "b": 2}
    assert target[0] == "a" and target[2] == "b"


def test_stopped_shards_are_left_alone_and_nodes_are_needed() -> None:
    assert spread([None, "a", "a"], ["a", "b"]) == [None, "a", "b"]
    assert spread(["a", "a"], []) == ["a", "a"]


@pytest.mark.parametrize("shards", [1, 5, 12, 13])
@pytest.mark.parametrize("nodes", [1, 2, 3, 7])
def test_spread_is_even_and_moves_the_fewest(shards: int, nodes: int) -> None:
    names = [f"n{i}" for i in range(nodes)]
    piled: list[str | None] = [names[0]] * shards  # every shard on one node
    target = spread(piled, names)
    counts = Counter(target)
    assert max(counts.values()) - min(counts.get(n, 0) for n in names) <= 1
    # The fewest moves: all but the first node's share leave it.
    assert sum(t != names[0] for t in target) == shards - counts[names[0]]
    assert counts[names[0]] == -(-shards // nodes)


def test_a_node_counts_once_alive_for_the_settle_time() -> None:
    watch = NodeWatch(settle_s=30)
    assert watch.observe(["a"], now=0) == []
    assert watch.observe(["a", "b"], now=20) == []
    assert watch.observe(["a", "b"], now=30) == ["a"]
    assert watch.observe(["a", "b"], now=50) == ["a", "b"]


def test_a_flapping_node_starts_again_each_time() -> None:
    watch = NodeWatch(settle_s=30)
    watch.observe(["a", "b"], now=0)
    assert watch.observe(["a"], now=25) == []  # "b" missed a poll
    assert watch.observe(["a", "b"], now=40) == ["a"]
    assert watch.observe(["a", "b"], now=69) == ["a"]
    assert watch.observe(["a", "b"], now=70) == ["a", "b"]
