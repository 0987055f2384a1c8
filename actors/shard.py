"""``DeviceShard``: a Ray actor hosting the ``DeviceActor`` of every device that hashes to it.

It loads a device's state lazily from the database on the device's first message (so a
restarted shard rebuilds itself), runs the device's batch through it, hands the new rows
to the group-commit buffer and answers only once they are committed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import numpy as np
import psycopg

from actors.alerting import Live
from actors.device import (
    KEEP_US,
    Batch,
    BatchRejected,
    DeviceActor,
    PreparedBatch,
    accept_many,
)
from actors.placement import shard_index
from actors.write_buffer import Backpressure, WriteBuffer
from algorithms.validation import Problem
from storage.alerts import AlertOp, AlertWrite, load_context, profile_rules
from storage.devices import DeviceInfo, load_device, recently_active_devices
from storage.pools import open_writer_connection
from storage.readings import DeviceRows, recent_readings

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ShardConfig:
    database_url: str
    max_commit_rows: int = 50_000
    max_buffered_rows: int = 500_000
    commit_timeout_s: float = 10.0
    retry_after_s: int = 5
    tick_s: float = 30.0  # clock for time-based alert rules (signal loss, due re-alerts)
    shard_count: int = 1  # how many shards share the devices (see actors.placement)
    adopt_active_s: float = 86_400.0  # at start, host devices that streamed this recently


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: Literal["ok", "rejected", "unknown_device", "busy"]
    accepted: int = 0
    duplicates: int = 0
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    retry_after_s: int = 0


class DeviceShard:
    """Decorated with ``ray.remote`` by the router; plain Python otherwise (and in tests)."""

    def __init__(self, index: int, config: ShardConfig) -> None:
        self.index = index
        self.config = config
        self.devices: dict[UUID, DeviceActor] = {}
        self._loading: dict[UUID, asyncio.Lock] = {}
        self._reader: psycopg.AsyncConnection | None = None
        self._buffer: WriteBuffer | None = None
        self._ticker: asyncio.Task | None = None
        self._adoption: asyncio.Task | None = None

    def _write_buffer(self) -> WriteBuffer:
        if self._buffer is None:
            self._buffer = WriteBuffer(
                lambda: open_writer_connection(self.config.database_url),
                max_commit_rows=self.config.max_commit_rows,
                max_buffered_rows=self.config.max_buffered_rows,
            )
        return self._buffer

    async def ingest(
        self,
        device_id: UUID,
        ts_us: np.ndarray,
        values: np.ndarray,
        received_us: int | None = None,
        history: bool = False,
    ) -> IngestOutcome:
        """``received_us``: when the API received the batch (default: now); ``history``:
        imported past readings (stored and trended, no alert rules evaluated)."""
        outcome = (await self._ingest_all([(device_id, ts_us, values, received_us, history)]))[0]
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def ingest_many(
        self, batches: list[tuple[UUID, np.ndarray, np.ndarray, int | None, bool]]
    ) -> list[IngestOutcome]:
        """Several devices' batches in one call: validated and trended as one set of arrays
        (``actors.device.accept_many``), sharing one group commit; an outcome per batch, in
        order. A batch whose write fails answers ``busy``: it is not stored."""
        outcomes = []
        for r in await self._ingest_all(batches):
            if isinstance(r, BaseException):
                log.error("ingest failed", exc_info=r)
                r = IngestOutcome("busy", retry_after_s=self.config.retry_after_s)
            outcomes.append(r)
        return outcomes

    async def _ingest_all(
        self, batches: list[tuple[UUID, np.ndarray, np.ndarray, int | None, bool]]
    ) -> list[IngestOutcome | BaseException]:
        results: list[IngestOutcome | BaseException | None] = []
        items: list[Batch] = []
        for device_id, ts_us, values, received_us, history in batches:
            try:
                actor = self.devices.get(device_id) or await self._load(device_id)
            except Exception as exc:  # the database could not be read: this batch fails
                results.append(exc)
                continue
            results.append(None if actor else IngestOutcome("unknown_device"))
            if actor is not None:
                items.append((actor, ts_us, values, received_us, history))
        if not items:
            return results  # type: ignore[return-value]
        self._write_buffer()
        self._start_ticker()
        now_us = time.time_ns() // 1000
        prepared = accept_many(items, now_us)
        commits = iter(
            await asyncio.gather(
                *(
                    self._commit(item[0], p, item[3] or now_us)
                    for item, p in zip(items, prepared, strict=True)
                ),
                return_exceptions=True,
            )
        )
        return [next(commits) if r is None else r for r in results]

    async def _commit(
        self, actor: DeviceActor, prepared: PreparedBatch | BatchRejected, received_us: int
    ) -> IngestOutcome:
        """Hand a prepared batch to the group commit and answer once it is committed."""
        if isinstance(prepared, BatchRejected):
            return IngestOutcome("rejected", problems=tuple(prepared.problems))
        rows = prepared.rows
        if not len(rows):
            return IngestOutcome("ok", accepted=0, duplicates=prepared.duplicates)
        rows.alert = self._alert_write(actor, prepared.ops, prepared, received_us / 1e6)
        try:
            future = self._write_buffer().submit(rows)
        except Backpressure:
            actor.forget(rows.ts_us, prepared)
            return IngestOutcome("busy", retry_after_s=self.config.retry_after_s)
        try:
            stored = await asyncio.wait_for(asyncio.shield(future), self.config.commit_timeout_s)
        except TimeoutError:
            # Still buffered and will be committed; the client re-sends and sees duplicates.
            return IngestOutcome("busy", retry_after_s=self.config.retry_after_s)
        except Exception:
            # The database refused these rows: the stream state must not keep them.
            if self.devices.get(actor.info.id) is actor:
                self.devices.pop(actor.info.id, None)
            raise
        accepted = int(stored.sum())
        return IngestOutcome(
            "ok", accepted=accepted, duplicates=prepared.duplicates + len(rows) - accepted
        )

    async def start(self) -> int:
        """Make sure the clock runs and the shard hosts every device of its own that streamed
        within ``adopt_active_s``, so that a shard Ray restarted raises signal loss for a
        device silent since before the restart. Idempotent; returns the devices hosted."""
        self._start_ticker()
        if self._adoption is None or (self._adoption.done() and self._adoption.exception()):
            self._adoption = asyncio.get_running_loop().create_task(self._adopt())
        await asyncio.shield(self._adoption)
        return len(self.devices)

    async def _adopt(self) -> None:
        conn = await self._reader_connection()
        active = await recently_active_devices(conn, self.config.adopt_active_s)
        mine = [d for d in active if shard_index(d, self.config.shard_count) == self.index]
        for device_id in mine:
            if device_id not in self.devices:
                await self._load(device_id)
        log.info("shard %d hosts %d recently active devices", self.index, len(mine))

    async def _load(self, device_id: UUID) -> DeviceActor | None:
        lock = self._loading.setdefault(device_id, asyncio.Lock())
        async with lock:
            if device_id in self.devices:
                return self.devices[device_id]
            conn = await self._reader_connection()
            info = await load_device(conn, device_id)
            if info is None:
                return None
            history = await recent_readings(conn, device_id, KEEP_US)
            context = await load_context(conn, device_id, info.profile_id)
            actor = DeviceActor(info, history, context)
            self.devices[device_id] = actor
        self._loading.pop(device_id, None)
        return actor

    async def _reader_connection(self) -> psycopg.AsyncConnection:
        if self._reader is None or self._reader.closed or self._reader.broken:
            self._reader = await open_writer_connection(self.config.database_url)
        return self._reader

    # -- alerts ------------------------------------------------------------------------

    def _alert_write(
        self,
        actor: DeviceActor,
        ops: list[AlertOp],
        prepared: PreparedBatch | None,
        received_s: float,
    ) -> AlertWrite:
        """State, alert changes and the one NOTIFY of this device's batch (or tick)."""
        info: DeviceInfo = actor.info
        message: dict = {"p": str(info.profile_id), "d": str(info.id), "k": info.kind}
        live: Live | None = prepared.live if prepared is not None else None
        if live is not None and prepared is not None:
            message["r"] = {
                "ts": live.ts_s,
                "v": live.value,
                "rate": live.rate_per_min,
                "dir": prepared.rows.direction[-1],
                "pred20": live.prediction_20,
            }
        if ops:
            message["a"] = [op.live() for op in ops]
        notify = json.dumps(message, separators=(",", ":")) if len(message) > 3 else None
        return AlertWrite(
            device_id=info.id,
            profile_id=info.profile_id,
            state=actor.alerts.state_to_write(),
            ops=ops,
            notify=notify,
        )

    def _start_ticker(self) -> None:
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
        timezone, rules = await profile_rules(await self._reader_connection(), profile_id)
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
        return self.devices.pop(device_id, None) is not None

    async def close(self) -> None:
        """Stop the clock and close the database connections (tests; Ray just kills)."""
        for task in (self._ticker, self._adoption):
            if task is not None:
                task.cancel()
        if self._buffer is not None:
            await self._buffer.close()
        if self._reader is not None:
            await self._reader.close()

    async def status(self) -> dict:
        buffer = self._buffer
        return {
            "index": self.index,
            "pid": os.getpid(),
            "devices": len(self.devices),
            "buffered_rows": buffer.buffered_rows if buffer else 0,
            "commits": buffer.commits if buffer else 0,
            "database_ok": buffer.database_ok if buffer else True,
        }
