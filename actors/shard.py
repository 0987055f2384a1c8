"""``DeviceShard``: a Ray actor hosting the ``DeviceActor`` of every device that hashes to it.

It loads a device's state lazily from the database on the device's first message (so a
restarted shard rebuilds itself), runs the device's batch through it, hands the new rows
to the group-commit buffer and answers only once they are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar
from uuid import UUID

import numpy as np
import psycopg
import ray

from actors import heap, metrics
from actors.alerting import Live
from actors.channel import Address, ChannelServer
from actors.device import (
    KEEP_US,
    Batch,
    BatchRejected,
    DeviceActor,
    PreparedBatch,
    accept_many,
)
from actors.ingest_call import IngestAnswers, IngestBatch, IngestCall, IngestOutcome
from actors.placement import shard_in, shard_index
from actors.request_log import RequestLog
from actors.write_buffer import Backpressure, WriteBuffer
from storage import live
from storage.alerts import AlertOp, AlertWrite, load_context, profile_rules
from storage.devices import DeviceInfo, load_device, recently_active_devices
from storage.errors import log_failure
from storage.pools import open_writer_connection
from storage.readings import DeviceRows, recent_readings
from storage.shard_layouts import Layout, current_layouts

T = TypeVar("T")

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShardConfig:
    database_url: str
    max_commit_rows: int = 50_000
    max_buffered_rows: int = 500_000
    min_commit_interval_s: float = 0.0  # see actors.write_buffer
    commit_timeout_s: float = 10.0
    retry_after_s: int = 5
    tick_s: float = 30.0  # clock for time-based alert rules (signal loss, due re-alerts)
    shard_count: int = 1  # how many shards share the devices (see actors.placement)
    adopt_active_s: float = 86_400.0  # at start, host devices that streamed this recently
    channel_ports: tuple[int, int] | None = None  # the ingest channel's (None: any free port)


@dataclass(slots=True)
class _Submitted:
    """A batch handed to the group commit, waiting for its ``future``."""

    actor: DeviceActor
    prepared: PreparedBatch
    request_id: str | None
    future: asyncio.Future[Any]


@dataclass(slots=True)
class _DuplicatesOnly:
    """A batch of readings the device already has: answered once they are committed."""

    actor: DeviceActor
    prepared: PreparedBatch


class DeviceShard:
    """Decorated with ``ray.remote`` by the router; plain Python otherwise (and in tests)."""

    def __init__(self, index: int, config: ShardConfig) -> None:
        self.index = index
        self.config = config
        self.devices: dict[UUID, DeviceActor] = {}
        self._loading: dict[UUID, asyncio.Lock] = {}
        self._reader: psycopg.AsyncConnection | None = None
        self._reader_lock = asyncio.Lock()  # one read at a time on it (``_reading``)
        self._buffer: WriteBuffer | None = None
        self._ticker: asyncio.Task | None = None
        # Calls waiting for their commits (``_all_stored``), and the down signal watched for them.
        self._answers: set[asyncio.Future[Any]] = set()
        self._down_watched: asyncio.Future[None] | None = None
        self._adoption: asyncio.Task | None = None
        # The recorded layouts (storage.shard_layouts), read on first use and on
        # ``refresh_layout``; None: no layout recorded, the hash decides.
        self._layouts: tuple[Layout | None, Layout | None] | None = None
        self._in_flight: Counter[UUID] = Counter()  # ingest calls under way, per device
        self._settled = asyncio.Condition()  # notified when an ingest call ends
        self._leaving = False  # handing over before a move to another node (``hand_over``)
        self.ingest_calls = 0  # ingest calls taken (``status``: with the commits, how full)
        self._request_log = RequestLog()  # which request ids the ``committed`` line names
        self._channel: ChannelServer | None = None  # opened on first ``channel`` call
        metrics.shard_started(index)

    def _write_buffer(self) -> WriteBuffer:
        if self._buffer is None:
            self._buffer = WriteBuffer(
                lambda: open_writer_connection(self.config.database_url),
                max_commit_rows=self.config.max_commit_rows,
                max_buffered_rows=self.config.max_buffered_rows,
                min_commit_interval_s=self.config.min_commit_interval_s,
                metrics_shard=str(self.index),
            )
        return self._buffer

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
        """``received_us``: when the API received the batch (default: now); ``history``:
        imported past readings (stored and trended, no alert rules evaluated); ``request_id``:
        the HTTP request's id, carried into the logs and the alerts' NOTIFY; ``body_site``:
        where a temperature device sits from this batch on (its skin-to-core offset)."""
        batch = (device_id, ts_us, values, received_us, history, request_id, body_site)
        outcome = (await self._ingest_all([batch]))[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def ingest_packed(self, call: IngestCall) -> IngestAnswers:
        """:meth:`ingest_many` as the router calls it (``actors.ingest_call``)."""
        return IngestAnswers.of(await self.ingest_many(call.batches()))

    async def channel(self) -> Address | None:
        """Where this shard takes ``ingest_packed`` calls on a socket of its own, and the
        token that socket asks for (``actors.channel``): on this node's address, at a port of
        ``config.channel_ports`` if set, opened on first asking, on the event loop that runs
        the shard's other calls. None (logged) when it cannot listen: the router then sends
        its calls through Ray, and asks again later."""
        if self._channel is None:
            self._channel = ChannelServer(self.ingest_packed)
        host = ray.util.get_node_ip_address() if ray.is_initialized() else "127.0.0.1"
        try:
            return await self._channel.start(host, self.config.channel_ports)
        except OSError as e:
            log.error("shard %d: ingest channel not opened: %s", self.index, e)
            return None

    async def ingest_many(self, batches: list[IngestBatch]) -> list[IngestOutcome]:
        """Several devices' batches in one call: validated and trended as one set of arrays
        (``actors.device.accept_many``), sharing one group commit; an outcome per batch, in
        order. A batch whose write fails answers ``busy``: it is not stored."""
        outcomes = []
        for r in await self._ingest_all(batches):
            if isinstance(r, BaseException):
                log_failure(log, "ingest failed", r)
                r = IngestOutcome("busy", retry_after_s=self.config.retry_after_s)
            outcomes.append(r)
        # One line per call (not per batch): which requests' rows this shard committed; a
        # stream's id once a minute, not with each of its batches (actors.request_log).
        named = self._request_log.fresh((b[5] for b in batches), time.monotonic())
        if named:
            log.info(
                "committed",
                extra={"request_ids": named, "accepted": sum(o.accepted for o in outcomes)},
            )
        return outcomes

    async def _ingest_all(self, batches: list[IngestBatch]) -> list[IngestOutcome | BaseException]:
        """Every batch's devices count as in flight until its outcome is known, so that a
        hand-over (``refresh_layout``) waits for them."""
        self.ingest_calls += 1
        if self._leaving:  # moving to another node: the batch goes to the next incarnation
            return [IngestOutcome("moved", retry_after_s=1) for _ in batches]
        devices = [b[0] for b in batches]
        self._in_flight.update(devices)
        try:
            return await self._prepare_and_commit(batches)
        finally:
            self._in_flight.subtract(devices)
            for device_id in devices:
                if self._in_flight[device_id] <= 0:
                    del self._in_flight[device_id]
            async with self._settled:
                self._settled.notify_all()

    async def _prepare_and_commit(
        self, batches: list[IngestBatch]
    ) -> list[IngestOutcome | BaseException]:
        results: list[IngestOutcome | BaseException | None] = []
        items: list[Batch] = []
        request_ids: list[str | None] = []
        for device_id, ts_us, values, received_us, history, request_id, body_site in batches:
            try:
                owned = self._owns_known(device_id)
                if owned is None:  # the layouts not read yet
                    owned = await self._read_within(self._owns(device_id))
                if not owned:
                    results.append(IngestOutcome("moved", retry_after_s=1))
                    continue
                actor = self.devices.get(device_id) or await self._read_within(
                    self._load(device_id)
                )
            except Exception as exc:  # the database could not be read: this batch fails
                results.append(exc)
                continue
            results.append(None if actor else IngestOutcome("unknown_device"))
            if actor is not None:
                if body_site is not None:
                    actor.alerts.use_body_site(body_site)
                items.append((actor, ts_us, values, received_us, history))
                request_ids.append(request_id)
        if not items:
            return results  # type: ignore[return-value]
        buffer = self._write_buffer()
        self._start_ticker()
        now_us = time.time_ns() // 1000
        prepared = accept_many(items, now_us)
        # Every batch goes to the group commit first; then the call waits once for all of
        # them (one wait per call, not a task, a future and a timer per batch).
        submitted: list[IngestOutcome | BaseException | _Submitted | _DuplicatesOnly] = []
        for item, p, request_id in zip(items, prepared, request_ids, strict=True):
            try:
                submitted.append(
                    self._submit(buffer, item[0], p, item[3] or now_us, len(item[1]), request_id)
                )
            except Exception as exc:  # this batch fails alone
                submitted.append(exc)
        commits = [s.future for s in submitted if isinstance(s, _Submitted)]
        known = [s for s in submitted if isinstance(s, _DuplicatesOnly)]
        answered: Iterator[IngestOutcome | BaseException] = iter(())
        if not known:
            stopped = await self._all_stored(commits) if commits else None
        else:  # rare (a re-send): waited for beside the commits
            waits = asyncio.gather(
                *(self._duplicates_only(s.actor, s.prepared) for s in known),
                return_exceptions=True,
            )
            stopped = await self._all_stored(commits) if commits else None
            answered = iter(await waits)
        answers = iter(
            self._finish(s, stopped)
            if isinstance(s, _Submitted)
            else (next(answered) if isinstance(s, _DuplicatesOnly) else s)
            for s in submitted
        )
        return [next(answers) if r is None else r for r in results]

    def _submit(
        self,
        buffer: WriteBuffer,
        actor: DeviceActor,
        prepared: PreparedBatch | BatchRejected,
        received_us: int,
        size: int,
        request_id: str | None,
    ) -> IngestOutcome | _Submitted | _DuplicatesOnly:
        """Hand a prepared batch to the group commit; or its answer, when it has one now."""
        if isinstance(prepared, BatchRejected):
            metrics.readings(actor.info.kind, rejected=size)
            return IngestOutcome("rejected", problems=tuple(prepared.problems))
        rows = prepared.rows
        if not len(rows):
            return _DuplicatesOnly(actor, prepared)
        if not buffer.database_ok:
            # Its last commit failed (the database down, its disk full): these rows would
            # only wait out the commit timeout. The client is told at once to retry; the
            # buffer's own retries find the database back.
            actor.forget(rows.ts_us, prepared)
            metrics.inc("vigil_backpressure_total", reason="database_down")
            return self._busy()
        rows.alert = self._alert_write(actor, prepared.ops, prepared, received_us / 1e6, request_id)
        try:
            future = buffer.submit(rows)
        except Backpressure:
            actor.forget(rows.ts_us, prepared)
            metrics.inc("vigil_backpressure_total", reason="buffer_full")
            return self._busy()
        return _Submitted(actor, prepared, request_id, future)

    def _finish(self, batch: _Submitted, stopped: str | None) -> IngestOutcome | BaseException:
        """A submitted batch's answer once the call stopped waiting for its commits
        (``stopped``: why it stopped before all were done, see :meth:`_all_stored`)."""
        future, actor, prepared = batch.future, batch.actor, batch.prepared
        if not future.done() or future.cancelled():
            # Still buffered and committed later (timeout), or kept while the database is
            # down: the client re-sends and sees duplicates.
            reason = "commit_timeout" if stopped == "timeout" else "database_down"
            metrics.inc("vigil_backpressure_total", reason=reason)
            return self._busy()
        if (exc := future.exception()) is not None:
            # The database refused these rows: the stream state must not keep them.
            if self.devices.get(actor.info.id) is actor:
                self.devices.pop(actor.info.id, None)
            return exc
        rows = prepared.rows
        accepted = int(np.count_nonzero(future.result()))  # the new rows: a fifth of .sum()
        duplicates = prepared.duplicates + len(rows) - accepted
        metrics.readings(actor.info.kind, accepted=accepted, duplicates=duplicates)
        _record_fired(prepared.ops, batch.request_id)
        return IngestOutcome("ok", accepted=accepted, duplicates=duplicates)

    async def _duplicates_only(self, actor: DeviceActor, prepared: PreparedBatch) -> IngestOutcome:
        """Known readings, but maybe not yet committed (a re-send after a commit timeout,
        while the database is down): acknowledged only once they are."""
        if not await self._committed(actor.info.id):
            return self._busy()
        metrics.readings(actor.info.kind, duplicates=prepared.duplicates)
        return IngestOutcome("ok", accepted=0, duplicates=prepared.duplicates)

    async def _all_stored(self, commits: list[asyncio.Future[Any]]) -> str | None:
        """Wait until every commit future is done (resolved or failed): ``None`` then, or
        why the wait stopped before: ``"timeout"`` past the commit timeout, ``"down"`` as
        soon as a commit fails because the database cannot be reached (the rows stay
        buffered).

        One answer future per wait, settled by the commits, a timer or the shard's one watch
        on the down signal, rather than ``asyncio.wait`` on both: that added and removed a
        callback on the shared down signal per wait, a removal that scans every other
        waiter's (10 % of the shard's samples on the one-reading path)."""
        left = sum(not f.done() for f in commits)
        if not left:
            return None
        down = self._write_buffer().down_signal()
        if down.done():
            return "down"
        if down is not self._down_watched:
            down.add_done_callback(self._database_down)
            self._down_watched = down
        loop = asyncio.get_running_loop()
        answer: asyncio.Future[None] = loop.create_future()

        def one_done(commit: asyncio.Future[Any]) -> None:
            nonlocal left
            if not commit.cancelled():
                commit.exception()  # seen: a failure after a timeout is nobody's to log
            left -= 1
            if not left and not answer.done():
                answer.set_result(None)

        for f in commits:
            if not f.done():
                f.add_done_callback(one_done)
        timer = loop.call_later(self.config.commit_timeout_s, _time_out, answer)
        self._answers.add(answer)
        try:
            await answer
            return None
        except TimeoutError:
            return "timeout"
        except ConnectionError:
            return "down"
        finally:
            timer.cancel()
            self._answers.discard(answer)

    def _database_down(self, down: asyncio.Future[None]) -> None:
        """A commit failed because the database cannot be reached: no call waits for its
        commits any longer (their rows stay buffered)."""
        for answer in list(self._answers):
            if not answer.done():
                answer.set_exception(ConnectionError("the database cannot be reached"))

    async def _committed(self, device_id: UUID) -> bool:
        """Wait (up to the commit timeout) for the device's rows still in the write buffer;
        whether they were all committed."""
        waiting = self._write_buffer().waiting_for(device_id)
        if not waiting:
            return True
        if not self._write_buffer().database_ok:
            return False  # the database is down: not committed within any wait worth making
        stopped = await self._all_stored(waiting)
        if stopped == "timeout":
            metrics.inc("vigil_backpressure_total", reason="commit_timeout")
        if stopped:  # or the database went down meanwhile: no use waiting on
            return False
        return not any(f.cancelled() or f.exception() is not None for f in waiting)

    def _busy(self) -> IngestOutcome:
        """The rows were not acknowledged: retry later, with the cause when one is known."""
        cause = self._buffer.cause if self._buffer is not None else ""
        return IngestOutcome("busy", retry_after_s=self.config.retry_after_s, cause=cause)

    async def start(self) -> int:
        """Make sure the clock runs and the shard hosts every device of its own that streamed
        within ``adopt_active_s``, so that a shard Ray restarted raises signal loss for a
        device silent since before the restart. Idempotent; returns the devices hosted."""
        self._start_ticker()
        if self._adoption is None or (self._adoption.done() and self._adoption.exception()):
            self._adoption = asyncio.get_running_loop().create_task(self._adopt())
        await asyncio.shield(self._adoption)
        heap.settle()  # the adopted devices are kept too
        return len(self.devices)

    async def _adopt(self) -> None:
        async with self._reading() as conn:
            active = await recently_active_devices(conn, self.config.adopt_active_s)
        mine = [d for d in active if await self._owns(d)]
        for device_id in mine:
            if device_id not in self.devices:
                await self._load(device_id)
        log.info("shard %d hosts %d recently active devices", self.index, len(mine))

    # -- which devices are this shard's ------------------------------------------------

    async def _owns(self, device_id: UUID) -> bool:
        """This shard hosts the device under the active layout and, while the shard count
        changes, under the layout being moved to as well: a moving device is nobody's until
        the move completes."""
        if self._layouts is None:
            async with self._reading() as conn:
                self._layouts = await current_layouts(conn)
        return bool(self._owns_known(device_id))

    def _owns_known(self, device_id: UUID) -> bool | None:
        """:meth:`_owns` from the layouts already read; None if they are not (every batch
        but the first's: no read, no timeout and no task per batch)."""
        if self._layouts is None:
            return None
        active, moving = self._layouts
        if active is None:
            owner = shard_index(device_id, self.config.shard_count)
        else:
            owner = shard_in(active.assignment, device_id)
        return owner == self.index and (
            moving is None or shard_in(moving.assignment, device_id) == self.index
        )

    async def refresh_layout(self) -> int:
        """Read the recorded layouts again; hand over every hosted device that is no longer
        this shard's: wait for its ingest calls under way and for every buffered row to be
        committed, then forget it (its next shard loads it, alert state included, from the
        database). Returns how many devices were handed over."""
        async with self._reading() as conn:
            self._layouts = await current_layouts(conn)
        leaving = [d for d in self.devices if not await self._owns(d)]
        async with self._settled:
            await self._settled.wait_for(lambda: not any(d in self._in_flight for d in leaving))
        if self._buffer is not None:
            await self._buffer.drain()
        for device_id in leaving:
            self.devices.pop(device_id, None)
        metrics.set_gauge("vigil_device_actors", len(self.devices), shard=str(self.index))
        log.info("shard %d handed over %d devices", self.index, len(leaving))
        return len(leaving)

    async def _load(self, device_id: UUID) -> DeviceActor | None:
        lock = self._loading.setdefault(device_id, asyncio.Lock())
        async with lock:
            if device_id in self.devices:
                return self.devices[device_id]
            async with self._reading() as conn:
                info = await load_device(conn, device_id)
                if info is None:
                    return None
                history = await recent_readings(conn, device_id, KEEP_US)
                context = await load_context(conn, device_id, info.profile_id)
            actor = DeviceActor(info, history, context)
            self.devices[device_id] = actor
            metrics.set_gauge("vigil_device_actors", len(self.devices), shard=str(self.index))
        self._loading.pop(device_id, None)
        return actor

    async def _read_within(self, read: Awaitable[T]) -> T:
        """A read of the database that a batch waits for, within the commit timeout: one
        that gets no answer (a lock held, a server gone silent) fails the batch (``busy``)
        rather than holding it, and every batch behind it, without bound. A read cancelled
        mid-query drops the reader connection (:meth:`_reading`)."""
        return await asyncio.wait_for(read, self.config.commit_timeout_s)

    @contextlib.asynccontextmanager
    async def _reading(self) -> AsyncIterator[psycopg.AsyncConnection]:
        """The shard's reader connection, for one read (one or more queries) at a time.

        A read that fails or is cancelled while it holds the connection (a batch's read
        past the commit timeout) leaves it in an unknown state: it is closed there, while no
        other read can be using it, and the next read opens a new one. (Closing it from
        outside, with another read's query in flight on it, freed the connection under
        psycopg's C code: the shard died of a SIGSEGV.)"""
        async with self._reader_lock:
            if self._reader is None or self._reader.closed or self._reader.broken:
                self._reader = await open_writer_connection(self.config.database_url)
            conn = self._reader
            try:
                yield conn
            except BaseException:
                self._reader = None
                with contextlib.suppress(Exception):
                    await conn.close()
                raise

    # -- alerts ------------------------------------------------------------------------

    def _alert_write(
        self,
        actor: DeviceActor,
        ops: list[AlertOp],
        prepared: PreparedBatch | None,
        received_s: float,
        request_id: str | None = None,
    ) -> AlertWrite:
        """State, alert changes and the one NOTIFY of this device's batch (or tick)."""
        info: DeviceInfo = actor.info
        newest: Live | None = prepared.live if prepared is not None else None
        reading: live.ReadingFields | None = None
        if newest is not None and prepared is not None:
            direction = prepared.rows.direction[-1]
            reading = (
                newest.ts_s,
                newest.value,
                newest.rate_per_min,
                direction,
                newest.prediction_20,
            )
        notify = None
        if reading is not None or ops:  # the live.DeviceUpdate of the batch
            alerts = [op.live() for op in ops]
            rid = request_id if ops else None
            notify = live.encode_update(info.profile_id, info.id, info.kind, reading, alerts, rid)
        return AlertWrite(
            device_id=info.id,
            profile_id=info.profile_id,
            state=actor.alerts.state_to_write(
                actor.newest_us,
                prepared is not None and prepared.replayable,
                time.monotonic(),
            ),
            ops=ops,
            notify=notify,
        )

    def _start_ticker(self) -> None:
        if self._leaving:
            return  # handed over: the shard on the new node runs the clock
        if self._ticker is None or self._ticker.done():
            self._ticker = asyncio.get_running_loop().create_task(self._tick_forever())

    async def _tick_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.tick_s)
            try:
                await self.tick()
            except Exception:
                log.exception("alert tick failed")

    async def tick(self, now_s: float | None = None) -> int:
        """Time-based rules for every hosted device; returns the alert changes written."""
        now = time.time() if now_s is None else now_s
        buffer = self._write_buffer()
        changes, waits = 0, []
        for actor in list(self.devices.values()):
            before = actor.alerts.snapshot()
            ops = actor.alerts.tick(now)
            if not ops and actor.alerts.evaluator == before.evaluator:
                continue
            empty = DeviceRows(
                actor.info.id, np.zeros(0, np.int64), np.zeros(0), np.zeros(0), [], None
            )
            empty.alert = self._alert_write(actor, ops, None, now)
            try:
                waits.append(buffer.submit(empty))
            except Backpressure:
                actor.alerts.restore(before)  # tried again on the next tick
                continue
            changes += len(ops)
            _record_fired(ops, None)  # time-based rules (signal loss): counted when queued
        for future in waits:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(future), self.config.commit_timeout_s)
        return changes

    async def reload_rules(self, profile_id: UUID) -> int:
        """A profile's alert settings changed: every hosted device of it uses them from its
        next reading on. Returns how many hosted devices were updated."""
        hosted = [a for a in self.devices.values() if a.info.profile_id == profile_id]
        if not hosted:
            return 0
        async with self._reading() as conn:
            timezone, rules = await profile_rules(conn, profile_id)
        for actor in hosted:
            actor.alerts.set_rules(rules, timezone)
        return len(hosted)

    async def acknowledge(self, device_id: UUID, rule: str) -> bool:
        actor = self.devices.get(device_id)
        if actor is not None:
            actor.alerts.acknowledge(rule)
        return actor is not None

    async def snooze(self, device_id: UUID, rule: str, until_s: float | None) -> bool:
        actor = self.devices.get(device_id)
        if actor is not None:
            actor.alerts.snooze(rule, until_s)
        return actor is not None

    async def evict(self, device_id: UUID) -> bool:
        """Forget a device's in-memory state (it is rebuilt from the database on next use)."""
        found = self.devices.pop(device_id, None) is not None
        metrics.set_gauge("vigil_device_actors", len(self.devices), shard=str(self.index))
        return found

    async def hand_over(self) -> int:
        """Before this shard moves to another node (``actors.router.move_shard``): answer
        ``moved`` (a 503 with a one-second Retry-After) to every upload from now on, stop the
        clock, wait for the ingest calls under way and for every buffered row (alert state
        included) to be committed, then close. The shard started on the new node loads its
        devices from the database, so nothing acknowledged is lost and no alert is decided
        twice. Returns the devices it hosted."""
        self._leaving = True
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        async with self._settled:
            await self._settled.wait_for(lambda: not self._in_flight)
        if self._buffer is not None:
            await self._buffer.drain()
        await self.close()
        log.info("shard %d handed over %d devices for a move", self.index, len(self.devices))
        return len(self.devices)

    async def close(self) -> None:
        """Stop the clock, the ingest channel and the database connections (tests; Ray just
        kills)."""
        for task in (self._ticker, self._adoption):
            if task is not None:
                task.cancel()
        if self._channel is not None:
            self._channel.close()
        if self._buffer is not None:
            await self._buffer.close()
        if self._reader is not None:
            await self._reader.close()

    @ray.method(concurrency_group="probe")  # answered while a large batch holds the main loop
    async def status(self) -> dict:
        buffer = self._buffer
        return {
            "index": self.index,
            "pid": os.getpid(),
            "devices": len(self.devices),
            "buffered_rows": buffer.buffered_rows if buffer else 0,
            "commits": buffer.commits if buffer else 0,
            "ingest_calls": self.ingest_calls,
            "channel_calls": self._channel.calls if self._channel else 0,
            "database_ok": buffer.database_ok if buffer else True,
            "node": _node_id(),
        }


def _time_out(answer: asyncio.Future[Any]) -> None:
    if not answer.done():
        answer.set_exception(TimeoutError())


def _node_id() -> str | None:
    """The Ray node this shard runs on (None outside Ray, as in unit tests)."""
    return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None


def _record_fired(ops: list[AlertOp], request_id: str | None) -> None:
    """Count the alerts a committed batch fired and how long after receipt they exist."""
    now = time.time()
    for op in ops:
        if op.type == "fired":
            metrics.inc("vigil_alerts_fired_total", rule=op.rule)
            metrics.observe("vigil_alert_fire_seconds", now - op.received_s, rule=op.rule)
            log.info(
                "alert fired",
                extra={"request_id": request_id, "alert_id": str(op.alert_id), "rule": op.rule},
            )
