"""``DeviceShard``: a Ray actor hosting the ``DeviceActor`` of every device that hashes to it.

It loads a device's state lazily from the database on the device's first message (so a
restarted shard rebuilds itself), runs the device's batch through it, hands the new rows
to the group-commit buffer and answers only once they are committed.
"""

from __future__ import annotations

import asyncio
import os
import time
from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import numpy as np
import psycopg

from actors.device import KEEP_US, BatchRejected, DeviceActor
from actors.write_buffer import Backpressure, WriteBuffer
from algorithms.validation import Problem
from storage.devices import load_device
from storage.pools import open_writer_connection
from storage.readings import recent_readings


@dataclass(frozen=True, slots=True)
class ShardConfig:
    database_url: str
    max_commit_rows: int = 50_000
    max_buffered_rows: int = 500_000
    commit_timeout_s: float = 10.0
    retry_after_s: int = 5


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

    def _write_buffer(self) -> WriteBuffer:
        if self._buffer is None:
            self._buffer = WriteBuffer(
                lambda: open_writer_connection(self.config.database_url),
                max_commit_rows=self.config.max_commit_rows,
                max_buffered_rows=self.config.max_buffered_rows,
            )
        return self._buffer

    async def ingest(self, device_id: UUID, ts_us: np.ndarray, values: np.ndarray) -> IngestOutcome:
        actor = self.devices.get(device_id) or await self._load(device_id)
        if actor is None:
            return IngestOutcome("unknown_device")
        buffer = self._write_buffer()
        try:
            prepared = actor.accept(ts_us, values, now_us=time.time_ns() // 1000)
        except BatchRejected as rejected:
            return IngestOutcome("rejected", problems=tuple(rejected.problems))
        rows = prepared.rows
        if not len(rows):
            return IngestOutcome("ok", accepted=0, duplicates=prepared.duplicates)
        try:
            future = buffer.submit(rows)
        except Backpressure:
            actor.forget(rows.ts_us)
            return IngestOutcome("busy", retry_after_s=self.config.retry_after_s)
        try:
            stored = await asyncio.wait_for(asyncio.shield(future), self.config.commit_timeout_s)
        except TimeoutError:
            # Still buffered and will be committed; the client re-sends and sees duplicates.
            return IngestOutcome("busy", retry_after_s=self.config.retry_after_s)
        except Exception:
            # The database refused these rows: the stream state must not keep them.
            self.devices.pop(device_id, None)
            raise
        accepted = int(stored.sum())
        return IngestOutcome(
            "ok", accepted=accepted, duplicates=prepared.duplicates + len(rows) - accepted
        )

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
            actor = DeviceActor(info, history)
            self.devices[device_id] = actor
        self._loading.pop(device_id, None)
        return actor

    async def _reader_connection(self) -> psycopg.AsyncConnection:
        if self._reader is None or self._reader.closed or self._reader.broken:
            self._reader = await open_writer_connection(self.config.database_url)
        return self._reader

    async def evict(self, device_id: UUID) -> bool:
        """Forget a device's in-memory state (it is rebuilt from the database on next use)."""
        return self.devices.pop(device_id, None) is not None

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
