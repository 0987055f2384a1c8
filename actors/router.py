"""From device id to the shard actor hosting it.

Every device hashes (stably, across processes and restarts: ``actors.placement``) to one of
4,096 virtual shards; the recorded layout (or, before any ``vigil shards scale``, ``v mod
shard_count``) maps those onto the Ray actors named ``vigil-shard-<i>``. Shards are detached
and restarted by Ray when their process dies; each is pinned to one node (round robin over
the alive nodes), and when that node dies the router starts it again on a surviving one.
Ingest calls go on each shard's ingest channel (``actors.channel``: a socket between the
replica's event loop and the shard's, a fraction of a Ray call's CPU), every other call
through Ray. A shard that stops answering fails its callers within ~2 s
(``ShardUnavailable``: a 503 with Retry-After), not after Ray's own node-death detection;
one that answers its probe but not an ingest call within its commit timeout and a margin
fails them too (``ShardTooSlow``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, cast
from uuid import UUID

import numpy as np
import ray
from ray.actor import ActorHandle
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from actors.channel import Address, Channel, ChannelClosed
from actors.ingest_call import IngestAnswers, IngestCall
from actors.notifier import NOTIFIER_NAME, AlertNotifier, NotifierConfig
from actors.placement import shard_in, shard_index, spread
from actors.shard import DeviceShard, IngestOutcome, ShardConfig
from storage.shard_layouts import Layout

log = logging.getLogger(__name__)

NAMESPACE = "vigil"
BATCH_RESOURCE = "batch"  # custom resource of nodes reserved for batch report jobs


def shard_name(index: int) -> str:
    return f"vigil-shard-{index}"


# Detached (outlive the driver), restarted by Ray without end, async with room for many
# concurrent calls, and taking no CPU slot from the scheduler.
_DETACHED = {
    "lifetime": "detached",
    "get_if_exists": True,
    "max_restarts": -1,
    "max_task_retries": 3,
    "max_concurrency": 1000,
    "num_cpus": 0,
}


# The liveness probe (``DeviceShard.status``) runs on an event loop of its own, so a shard
# busy with a large batch (its loop held for seconds by numpy and Python) still answers it
# and is not taken for dead; a shard whose process is gone or hung in its probe does not.
SHARD_CONCURRENCY_GROUPS = {"probe": 1}


def _shard_class() -> Any:
    remote: Any = ray.remote  # its typed overloads do not list concurrency_groups
    # No task events: Ray would record every ingest call (several a second per shard) in the
    # GCS for its state API, costing CPU per call and GCS memory that grows until Ray's cap
    # (the soak saw the GCS grow 55 -> 147 MiB in 10 minutes). Vigil's own metrics count them.
    return remote(concurrency_groups=SHARD_CONCURRENCY_GROUPS, enable_task_events=False)(
        DeviceShard
    )


def alive_nodes() -> list[str]:
    """Ids of the cluster's alive nodes that may host shards, in a stable order. Nodes
    offering the ``batch`` resource are left to batch jobs (unless there is no other)."""
    nodes = [n for n in ray.nodes() if n["Alive"]]
    serving = [n for n in nodes if BATCH_RESOURCE not in n.get("Resources", {})] or nodes
    return sorted(n["NodeID"] for n in serving)


def assigned_node(index: int, nodes: list[str]) -> str:
    """Shard ``index``'s node: round robin over the alive nodes, so shards spread evenly and
    the same cluster always gives the same answer."""
    return nodes[index % len(nodes)]


def _placed(remote_cls: Any, index: int, node: str, namespace: str) -> Any:
    # Hard affinity: the shard runs on its node or not at all (Ray's soft affinity placed
    # shards on other nodes while theirs was alive). When the node dies the shard dies
    # with it, and the router starts it again on a surviving node (``ShardRouter.handle``).
    strategy = NodeAffinitySchedulingStrategy(node_id=node, soft=False)
    return remote_cls.options(
        name=shard_name(index),
        namespace=namespace,
        scheduling_strategy=strategy,
        **_DETACHED,
    )


def start_shard(
    index: int, config: ShardConfig, namespace: str = NAMESPACE, nodes: list[str] | None = None
) -> ActorHandle:
    """Create (or find, if already running) shard ``index`` on its assigned node."""
    node = assigned_node(index, nodes or alive_nodes())
    return _placed(_shard_class(), index, node, namespace).remote(index, config)


def start_shards(
    shard_count: int, config: ShardConfig, namespace: str = NAMESPACE
) -> list[ActorHandle]:
    """Create (or find, if already running) the shard actors, spread over the alive nodes;
    requires ``ray.init`` first."""
    nodes = alive_nodes()
    return [start_shard(i, config, namespace, nodes) for i in range(shard_count)]


def shard_node(index: int, namespace: str = NAMESPACE) -> str | None:
    """The node a running shard is on (None if it is not running)."""
    try:
        handle = ray.get_actor(shard_name(index), namespace=namespace)
        status = cast(dict[str, Any], ray.get(handle.status.remote(), timeout=10))
        return cast(str | None, status["node"])
    except Exception:  # not running, or not answering
        return None


def rebalance_shards(
    shard_count: int, config: ShardConfig, namespace: str = NAMESPACE
) -> list[int]:
    """Spread the running shards evenly over the alive nodes, moving as few as that allows
    (``actors.placement.spread``: after a node died its shards restarted elsewhere; a node
    that comes back takes shards from the fullest nodes). Each moved shard hands over
    (``move_shard``); its uploads get 503 with Retry-After meanwhile. Returns the shards
    moved. ``actors.balancer`` does this by itself when nodes join."""
    current = [shard_node(i, namespace) for i in range(shard_count)]
    target = spread(current, alive_nodes())
    moved = [i for i in range(shard_count) if current[i] is not None and target[i] != current[i]]
    for i in moved:
        move_shard(i, cast(str, target[i]), config, namespace)
    return moved


MOVE_ATTEMPTS = 3


def move_shard(
    index: int, node: str, config: ShardConfig, namespace: str = NAMESPACE
) -> str | None:
    """Move shard ``index`` to ``node``: it hands over (answers ``moved`` to new uploads,
    waits for those under way and commits every buffered row and its alert state), stops,
    and starts on ``node``, where it adopts its devices from the database. Nothing
    acknowledged is lost and no alert is decided twice. Returns the node it runs on.

    An API replica that needs the shard in the gap between the stop and the start (an upload,
    a readiness probe) starts it itself, on its round-robin node, and the start here then
    finds that one. The shard is then moved again, up to ``MOVE_ATTEMPTS`` in all: left where
    the replica put it, the next balancing pass could even the nodes out by moving another
    shard, two moves where one was planned."""
    placed: str | None = None
    for _ in range(MOVE_ATTEMPTS):
        placed = _hand_over_and_start(index, node, config, namespace)
        if placed == node:
            break
        log.warning(
            "shard %d started on node %s in its move to %s; moving it again", index, placed, node
        )
    return placed


def _hand_over_and_start(index: int, node: str, config: ShardConfig, namespace: str) -> str | None:
    """One attempt of ``move_shard``; the node the shard then runs on."""
    with contextlib.suppress(ValueError):
        handle = ray.get_actor(shard_name(index), namespace=namespace)
        with contextlib.suppress(Exception):  # its node is gone: there is nothing to hand over
            ray.get(handle.hand_over.remote(), timeout=30)
        ray.kill(handle, no_restart=True)
    _wait_gone(shard_name(index), namespace)
    moved = _placed(_shard_class(), index, node, namespace).remote(index, config)
    ray.get(moved.start.remote())
    return shard_node(index, namespace)


def _wait_gone(name: str, namespace: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            ray.get_actor(name, namespace=namespace)
        except ValueError:
            return
        time.sleep(0.1)
    raise TimeoutError(f"{name} did not stop")


def stop_shards(shard_count: int, namespace: str = NAMESPACE) -> None:
    """Stop the shard actors (and the alert notifier, if one was started)."""
    for name in [*(shard_name(i) for i in range(shard_count)), NOTIFIER_NAME]:
        with contextlib.suppress(ValueError):
            ray.kill(ray.get_actor(name, namespace=namespace), no_restart=True)


def start_notifier(config: NotifierConfig, namespace: str = NAMESPACE) -> ActorHandle:
    """Create (or find) the cluster's alert notifier; call ``start`` on it to make sure it
    listens."""
    remote_cls: Any = ray.remote(AlertNotifier)
    return remote_cls.options(name=NOTIFIER_NAME, namespace=namespace, **_DETACHED).remote(config)


async def keep_notifier_listening(config: NotifierConfig, namespace: str = NAMESPACE) -> None:
    """Create (or find) the alert notifier and make sure it listens (idempotent)."""
    await start_notifier(config, namespace).start.remote()


# (device_id, ts_us, values, received_us, history, request_id, body_site, future): the
# shard's ingest_packed takes each item without its future, packed (actors.ingest_call).
_Pending = tuple[
    UUID, np.ndarray, np.ndarray, int | None, bool, str | None, str | None, asyncio.Future
]


class ShardUnavailable(Exception):
    """A shard did not answer a liveness probe in time: its node is gone or Ray is
    restarting it. The caller answers 503 with ``retry_after_s``; nothing was acknowledged,
    and a batch the shard did take is a duplicate when re-sent."""

    detail = "this device's shard is restarting"  # what the client is told

    def __init__(self, index: int, retry_after_s: int) -> None:
        super().__init__(f"shard {index} is not answering")
        self.index = index
        self.retry_after_s = retry_after_s


class ShardTooSlow(ShardUnavailable):
    """A shard alive (it answers its probe, on an event loop of its own) that did not answer
    an ingest call within its deadline: its main loop is held (a database read that gets no
    answer, a long computation). The client is told to retry rather than held without
    bound; a batch the shard still commits later is a duplicate when re-sent."""

    detail = "this device's shard did not answer in time; retry later"


@dataclass
class HoldStats:
    """What holding calls cost and gained in this replica: calls held, seconds held in
    total (the longest one too), and the batches that joined a call while it was held."""

    calls: int = 0
    held_s: float = 0.0
    longest_s: float = 0.0
    joined: int = 0

    def add(self, held_s: float, joined: int) -> None:
        self.calls += 1
        self.held_s += held_s
        self.longest_s = max(self.longest_s, held_s)
        self.joined += joined


class ShardRouter:
    """Used inside API replicas: finds shard actors by name and forwards device batches.

    Batches for one shard travel together: while a call to a shard is in flight, the batches
    that arrive for it wait and then go in one ``ingest_packed`` call (as the write buffer
    does with commits), so many small uploads cost one actor call, not one each. When
    batches come often (the shard's previous call, answered less than ``BUSY_WITHIN_S``
    ago, carried two or more), a call to an idle shard is also held up to ``hold_max_s``
    (at most ``MAX_HOLD_S``) or until ``HOLD_BATCHES`` batches wait, so it carries more of
    them; when traffic is light a batch goes at once: a lone upload is never held.
    """

    MAX_PER_CALL = 512
    MAX_HOLD_S = 0.05  # the longest any batch waits for others to join its call
    HOLD_BATCHES = 256  # a held call goes as soon as this many batches wait
    BUSY_WITHIN_S = 0.1  # a shard whose last call shared by 2+ batches ended since is busy
    # A call still unanswered after PROBE_EVERY_S makes the router ask the shard for its
    # status; no answer within PROBE_TIMEOUT_S fails the call (and, for DOWN_S, every call
    # to that shard) at once, rather than after Ray's own node-death detection (~10 s+).
    PROBE_EVERY_S = 0.5
    PROBE_TIMEOUT_S = 1.5
    DOWN_S = 1.0
    RETRY_AFTER_S = 2
    # An ingest call is answered within the shard's commit timeout (``busy`` past it); past
    # that and this margin (a large batch's numpy work on a loaded machine) it fails with
    # ``ShardTooSlow``, even while the shard answers its probe.
    INGEST_MARGIN_S = 5.0
    # A shard whose ingest channel cannot be reached (a network that lets Ray's ports
    # through and no other) or that has none (a shard of an older release, in an upgrade's
    # overlap) takes its ingest calls through Ray; the channel is tried again after this.
    CHANNEL_RETRY_S = 60.0

    def __init__(
        self,
        shard_count: int,
        namespace: str = NAMESPACE,
        shard_config: ShardConfig | None = None,
        hold_max_s: float = 0.02,
    ) -> None:
        """``shard_config``: start a shard that is gone (its node died) on a surviving node
        when it is next needed; without it a missing shard is an error. ``hold_max_s``: how
        long a call may be held for more batches when they come often (0: never held)."""
        self.shard_count = shard_count
        self.hold_max_s = min(max(hold_max_s, 0.0), self.MAX_HOLD_S)
        self.holds = HoldStats()
        self.namespace = namespace
        self.shard_config = shard_config
        self.layout: Layout | None = None  # the recorded active layout, once loaded
        self._layout_loader: Callable[[], Awaitable[Layout | None]] | None = None
        self._layout_lock = asyncio.Lock()
        self._layout_read_at = 0.0
        self._handles: dict[int, ActorHandle] = {}
        self._pending: dict[int, list[_Pending]] = {}
        self._senders: dict[int, asyncio.Task] = {}
        self._down_until: dict[int, float] = {}
        self._last_call: dict[int, tuple[float, int]] = {}  # shard: (answered at, batches)
        self._enough: dict[int, asyncio.Event] = {}  # set when HOLD_BATCHES wait
        self._channels: dict[int, Channel] = {}
        self._channel_locks: dict[int, asyncio.Lock] = {}
        self._no_channel_until: dict[int, float] = {}
        self.channel_calls = 0  # ingest calls answered on a channel (tests)

    def handle(self, index: int) -> ActorHandle:
        found = self._handles.get(index)
        if found is None:
            try:
                found = ray.get_actor(shard_name(index), namespace=self.namespace)
            except ValueError:
                if self.shard_config is None:
                    raise
                found = start_shard(index, self.shard_config, self.namespace)
            self._handles[index] = found
        return found

    def for_device(self, device_id: UUID) -> ActorHandle:
        return self.handle(self.index_for(device_id))

    def index_for(self, device_id: UUID) -> int:
        """The device's shard under the active layout (the hash, if none is recorded)."""
        if self.layout is None:
            return shard_index(device_id, self.shard_count)
        return shard_in(self.layout.assignment, device_id)

    async def follow_layout(self, loader: Callable[[], Awaitable[Layout | None]]) -> None:
        """Read the active layout now and again whenever a shard answers ``moved``."""
        self._layout_loader = loader
        await self.reload_layout()

    async def reload_layout(self, min_interval_s: float = 0.0) -> None:
        if self._layout_loader is None:
            return
        async with self._layout_lock:
            if time.monotonic() - self._layout_read_at < min_interval_s:
                return  # another caller just read it
            layout = await self._layout_loader()
            self._layout_read_at = time.monotonic()
            if layout is not None:
                self.layout, self.shard_count = layout, layout.shard_count

    async def ingest(
        self,
        device_id: UUID,
        ts_us: np.ndarray,
        values: np.ndarray,
        received_us: int | None = None,
        history: bool = False,
        request_id: str | None = None,
        body_site: str | None = None,
    ) -> IngestOutcome:
        """``received_us``: when Vigil received the batch (its alerts carry it);
        ``history``: imported past readings, stored without evaluating the alert rules;
        ``request_id``: the HTTP request's, for the shard's logs and the alerts' NOTIFY;
        ``body_site``: where a temperature device sits from this batch on. A
        device whose shard changed is sent on to its new shard; one that is moving right now
        answers ``moved`` with a short Retry-After."""
        for _ in range(3):
            index = self.index_for(device_id)
            outcome = await self._ingest_at(
                index, device_id, ts_us, values, received_us, history, request_id, body_site
            )
            if outcome.status != "moved":
                return outcome
            await self.reload_layout(min_interval_s=0.2)
            if self.index_for(device_id) == index:
                break  # the move is not complete yet
        return IngestOutcome("moved", retry_after_s=outcome.retry_after_s or 1)

    async def _ingest_at(
        self,
        index: int,
        device_id: UUID,
        ts_us: np.ndarray,
        values: np.ndarray,
        received_us: int | None,
        history: bool,
        request_id: str | None = None,
        body_site: str | None = None,
    ) -> IngestOutcome:
        loop = asyncio.get_running_loop()
        future: asyncio.Future = loop.create_future()
        item = (device_id, ts_us, values, received_us, history, request_id, body_site, future)
        queue = self._pending.setdefault(index, [])
        queue.append(item)
        if len(queue) >= self.HOLD_BATCHES and index in self._enough:
            self._enough[index].set()
        sender = self._senders.get(index)
        if sender is None or sender.done():
            self._senders[index] = loop.create_task(self._send(index))
        # Behind a slow call, or in one: answered within the deadline all the same. A timer
        # on the future rather than wait_for around a shield: three futures, a task and
        # their callbacks less per batch (8 % of a replica's samples on the one-reading
        # path). A caller that goes away cancels the future; its batch still goes (or
        # went) to the shard, whose answer is then nobody's.
        deadline = loop.call_later(self.ingest_deadline_s, self._too_slow, index, item)
        try:
            return await future
        finally:
            deadline.cancel()

    def _too_slow(self, index: int, item: _Pending) -> None:
        """An ingest's deadline passed: not sent yet, it never will be; either way its caller
        is told to retry."""
        future = item[-1]
        if future.done():
            return
        queue = self._pending.get(index, [])
        for i, waiting in enumerate(queue):
            if waiting is item:
                del queue[i]
                break
        future.set_exception(ShardTooSlow(index, self.RETRY_AFTER_S))

    @property
    def ingest_deadline_s(self) -> float:
        """How long an ingest call may take before its callers are told to retry."""
        config = self.shard_config or ShardConfig(database_url="")
        return config.commit_timeout_s + self.INGEST_MARGIN_S

    def hold_for(self, index: int) -> float:
        """How long the next call to an idle shard waits for more batches: ``hold_max_s``
        when the shard's previous call carried two or more batches and was answered within
        ``BUSY_WITHIN_S``, else 0 (no hold)."""
        answered_at, carried = self._last_call.get(index, (0.0, 0))
        busy = carried >= 2 and time.monotonic() - answered_at < self.BUSY_WITHIN_S
        return self.hold_max_s if busy else 0.0

    async def _hold(self, index: int, queue: list[_Pending]) -> None:
        """Wait (bounded by ``hold_for``) for more batches to join the call, if they come
        often; returns at once when traffic is light or ``HOLD_BATCHES`` already wait."""
        hold_s = self.hold_for(index)
        if hold_s <= 0 or len(queue) >= self.HOLD_BATCHES:
            return
        enough = self._enough[index] = asyncio.Event()
        started, before = time.monotonic(), len(queue)
        try:
            await asyncio.wait_for(enough.wait(), hold_s)
        except TimeoutError:
            pass
        finally:
            del self._enough[index]
        self.holds.add(time.monotonic() - started, len(queue) - before)

    async def _send(self, index: int) -> None:
        queue = self._pending[index]
        await self._hold(index, queue)
        while queue:
            batch = queue[: self.MAX_PER_CALL]
            del queue[: len(batch)]
            try:
                answers = await self.ingest_call(
                    index,
                    IngestCall.of([item[:-1] for item in batch]),
                    deadline_s=self.ingest_deadline_s,
                )
                outcomes = answers.outcomes()
            except Exception as exc:
                self._forget(index)  # looked up again: the actor may be new
                for *_, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            self._last_call[index] = (time.monotonic(), len(batch))
            for (*_, future), outcome in zip(batch, outcomes, strict=True):
                if not future.done():
                    future.set_result(outcome)

    async def call(
        self, index: int, method: str, *args: object, deadline_s: float | None = None
    ) -> Any:
        """``shard.method(*args)`` through Ray, failing with ``ShardUnavailable`` within about
        PROBE_EVERY_S + PROBE_TIMEOUT_S when the shard stops answering, and with
        ``ShardTooSlow`` after ``deadline_s`` (if given) when it answers only its probe."""
        return await self._watched(
            index, lambda: getattr(self.handle(index), method).remote(*args), deadline_s
        )

    async def ingest_call(
        self, index: int, call: IngestCall, deadline_s: float | None = None
    ) -> IngestAnswers:
        """The shard's ``ingest_packed(call)``, on its channel (through Ray when it has none),
        watched as :meth:`call` is."""
        answers: IngestAnswers = await self._watched(
            index, lambda: self._ingest_packed(index, call), deadline_s
        )
        return answers

    async def _watched(
        self, index: int, start: Callable[[], Awaitable[Any]], deadline_s: float | None
    ) -> Any:
        """What ``start()`` answers, while the shard answers its probe (see :meth:`call`)."""
        if time.monotonic() < self._down_until.get(index, 0.0):
            raise ShardUnavailable(index, self.RETRY_AFTER_S)
        started = time.monotonic()
        task = asyncio.ensure_future(start())
        while True:
            done, _ = await asyncio.wait({task}, timeout=self.PROBE_EVERY_S)
            if done:
                return task.result()
            if deadline_s is not None and time.monotonic() - started > deadline_s:
                task.add_done_callback(_consume)  # its late answer is nobody's to see
                raise ShardTooSlow(index, self.RETRY_AFTER_S)
            if await self.probe(index) is None:
                task.add_done_callback(_consume)  # its late error is nobody's to see
                self._down_until[index] = time.monotonic() + self.DOWN_S
                self._forget(index)
                raise ShardUnavailable(index, self.RETRY_AFTER_S)

    async def probe(self, index: int, timeout_s: float | None = None) -> dict | None:
        """The shard's status, or None if it does not answer within the timeout."""
        try:
            ref: Any = self.handle(index).status.remote()
            status: dict | None = await asyncio.wait_for(ref, timeout_s or self.PROBE_TIMEOUT_S)
            return status
        except Exception:  # timeout, actor dead or not found
            self._forget(index)  # looked up again: the actor may be new
            return None

    def _forget(self, index: int) -> None:
        """Drop the shard's handle and channel: both are found again on its next call (the
        channel asked for again at once: the shard may be a new incarnation, or moved)."""
        self._handles.pop(index, None)
        self._no_channel_until.pop(index, None)
        channel = self._channels.pop(index, None)
        if channel is not None:
            channel.close()

    async def _ingest_packed(self, index: int, call: IngestCall) -> IngestAnswers:
        """``ingest_packed`` on the shard's channel (through Ray when it has none). A broken
        channel fails the call with ``ShardUnavailable``: the shard's process ended, or it
        closed its channel to move, and took the call or not; a re-sent batch is a
        duplicate."""
        channel = await self._channel(index)
        if channel is None:
            answers: IngestAnswers = await self.handle(index).ingest_packed.remote(call)
            return answers
        try:
            answers = await channel.call(call)
        except ChannelClosed:
            self._forget(index)
            raise ShardUnavailable(index, self.RETRY_AFTER_S) from None
        self.channel_calls += 1
        return answers

    async def _channel(self, index: int) -> Channel | None:
        """The shard's open channel, opened if need be; None: calls go through Ray."""
        found = self._channels.get(index)
        if found is not None and not found.closed:
            return found
        if time.monotonic() < self._no_channel_until.get(index, 0.0):
            return None
        async with self._channel_locks.setdefault(index, asyncio.Lock()):
            found = self._channels.get(index)
            if found is not None and not found.closed:
                return found  # opened by another call meanwhile
            handle = self.handle(index)
            try:
                ask: Any = handle.channel
            except AttributeError:  # a shard of an older release: it has no channel
                self._through_ray(index, None)
                return None
            address: Address | None = await ask.remote()
            if address is None:  # the shard could not listen (it logged why)
                self._through_ray(index, " has no ingest channel")
                return None
            try:
                found = await Channel.open(address)
            except (OSError, TimeoutError) as exc:
                where = f"{address.host}:{address.port}"
                self._through_ray(
                    index, f"'s ingest channel at {where} not reached ({type(exc).__name__})"
                )
                return None
            self._channels[index] = found
            return found

    def _through_ray(self, index: int, why: str | None) -> None:
        """The shard's ingest calls go through Ray for ``CHANNEL_RETRY_S`` (logged, with
        ``why`` after the shard's number, unless None)."""
        if why is not None:
            log.warning(
                "shard %d%s; its ingest calls go through Ray for %d s",
                index,
                why,
                self.CHANNEL_RETRY_S,
            )
        self._no_channel_until[index] = time.monotonic() + self.CHANNEL_RETRY_S

    async def acknowledge(self, device_id: UUID, rule: str) -> None:
        """Tell the device's shard that the alert of ``rule`` was acknowledged."""
        await self.for_device(device_id).acknowledge.remote(device_id, rule)

    async def snooze(self, device_id: UUID, rule: str, until_s: float) -> None:
        """Tell the device's shard to hold back the repeats of ``rule`` until ``until_s``."""
        await self.for_device(device_id).snooze.remote(device_id, rule, until_s)

    async def evict(self, device_id: UUID) -> None:
        """Make the device's shard forget its in-memory state (rebuilt from the database)."""
        await self.for_device(device_id).evict.remote(device_id)

    async def reload_rules(
        self, device_ids: list[UUID], profile_id: UUID, timeout_s: float = 10.0
    ) -> list[BaseException]:
        """Ask each shard hosting one of the devices to reload the profile's alert rules;
        returns the failures (a shard that cannot be reached loads them when it restarts)."""
        indexes = {self.index_for(d) for d in device_ids}
        calls: list[Awaitable[None]] = [
            asyncio.wait_for(self.handle(i).reload_rules.remote(profile_id), timeout_s)
            for i in indexes
        ]
        results = await asyncio.gather(*calls, return_exceptions=True)
        return [r for r in results if isinstance(r, BaseException)]

    async def start_all(self) -> list[int]:
        """Ask every shard to make sure its clock runs and it hosts its recently active
        devices (a shard Ray restarted has neither until asked); devices hosted per shard."""
        calls = [self.call(i, "start") for i in range(self.shard_count)]
        results = await asyncio.gather(*calls, return_exceptions=True)
        failed = [r for r in results if isinstance(r, BaseException)]
        if failed:
            raise failed[0]
        return [r for r in results if isinstance(r, int)]

    async def statuses(self, timeout_s: float = 2.0) -> list[dict | None]:
        """Every shard's status, None for each that did not answer within the timeout."""
        return list(
            await asyncio.gather(*(self.probe(i, timeout_s) for i in range(self.shard_count)))
        )


def _consume(task: asyncio.Future) -> None:
    if not task.cancelled():
        task.exception()
