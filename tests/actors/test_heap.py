"""``actors.heap.settle``: in a Ray actor's process, the heap built at start is frozen and the
young generation collected after 50,000 net allocations; nowhere else."""

from __future__ import annotations

import gc

import ray

from actors import heap


class _Actor:
    """A Ray actor of its own process, settling its heap as a shard or a replica does."""

    def settle_twice(self) -> dict:
        first = heap.settle()
        frozen = gc.get_freeze_count()
        second = heap.settle()
        return {
            "settled": (first, second),
            "young_threshold": gc.get_threshold()[0],
            "frozen": (frozen, gc.get_freeze_count()),
        }


def test_an_actors_heap_is_frozen_once_and_collected_less_often(stack) -> None:
    actor = ray.remote(num_cpus=0)(_Actor).remote()
    try:
        got = ray.get(actor.settle_twice.remote(), timeout=60)
    finally:
        ray.kill(actor)
    assert got["settled"] == (True, True)
    assert got["young_threshold"] == heap.YOUNG_COLLECTION_AFTER
    frozen, after_second = got["frozen"]
    assert frozen > 10_000, frozen  # the modules and what the process built
    assert after_second == frozen  # the second call froze nothing more


def test_a_process_that_is_no_actors_is_left_as_it_is(stack) -> None:
    before = gc.get_threshold(), gc.get_freeze_count()
    assert heap.settle() is False  # this test process: a Ray driver, not an actor
    assert (gc.get_threshold(), gc.get_freeze_count()) == before
