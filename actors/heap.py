"""The garbage collector in Vigil's long-running actor processes (Serve replicas, shards, the
notifier).

With CPython's default thresholds a replica under 2,000 streaming devices spent 16-27 % of
its event loop's CPU collecting, and a shard 10-17 % (``time.thread_time`` between the
collector's start and stop callbacks, ``bench.alerts``): a young collection every 700 net
allocations, and a full one every few seconds over some 300,000 objects, most of them the
modules, the app and the pools built at start, which are never garbage. Once such a process
has built what it keeps, :func:`settle` collects once, moves everything to the permanent
generation (``gc.freeze``), and lets the young generation grow to 50,000 net allocations
before it is collected. Reference counting still frees almost everything at once; the
collector only finds reference cycles, and at most that many new objects wait for it.
"""

from __future__ import annotations

import gc
import logging

import ray

log = logging.getLogger(__name__)

YOUNG_COLLECTION_AFTER = 50_000  # net allocations (CPython's default: 700)
_settled = False


def settle() -> bool:
    """In a Ray actor's own process, once: a full collection, everything alive moved to the
    permanent generation, and the young generation's threshold raised. Nothing in any other
    process (a test's, a driver's, whose heap is not this module's to settle); returns whether
    this process is settled."""
    global _settled
    if _settled:
        return True
    if not ray.is_initialized() or ray.get_runtime_context().get_actor_id() is None:
        return False
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_COLLECTION_AFTER, middle, old)
    _settled = True
    log.info("heap settled", extra={"frozen_objects": gc.get_freeze_count()})
    return True
