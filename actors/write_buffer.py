"""Group commit: many batches, from many devices, share one transaction.

A batch waits while the previous commit runs, then goes in the next one with everything
else that arrived meanwhile; an idle buffer commits at once. Commits start at least
``min_commit_interval_s`` apart: at a moderate rate a fast database would otherwise commit a
few rows at a time, and a commit's cost is mostly per commit, not per row (at 1,000 readings
a second a shard committed 6 rows at a time, at 2,000 it committed 20, and spent more CPU
on the 1,000). The pacing ends as soon as ``pace_rows`` rows wait (1,000: beside that many
rows a commit's own cost is small, and large uploads, whose senders wait for each answer
before the next, are not held back by it). Nothing is acknowledged before
it is committed. When the database is unreachable the rows stay buffered and
the write is retried with backoff; past ``max_buffered_rows`` new batches are refused
(``Backpressure``) instead of growing memory or dropping data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable

import numpy as np
import psycopg

from actors import metrics
from storage.errors import log_failure
from storage.readings import DeviceRows, ReadingsWriter

log = logging.getLogger(__name__)


class Backpressure(Exception):
    """The buffer is full: the caller should retry later."""


_Item = tuple[DeviceRows, asyncio.Future]


class WriteBuffer:
    def __init__(
        self,
        connect: Callable[[], Awaitable[psycopg.AsyncConnection]],
        *,
        max_commit_rows: int = 50_000,
        max_buffered_rows: int = 500_000,
        retry_initial_s: float = 0.2,
        retry_max_s: float = 5.0,
        min_commit_interval_s: float = 0.0,
        pace_rows: int = 1_000,
        metrics_shard: str = "",
    ) -> None:
        """``min_commit_interval_s``: the least time from one commit's start to the next,
        unless ``pace_rows`` rows (or a full commit's worth) wait; ``metrics_shard``: the
        ``shard`` label of this buffer's metrics."""
        self._connect = connect
        self._max_commit_rows = max_commit_rows
        self._max_buffered_rows = max_buffered_rows
        self._retry_initial_s = retry_initial_s
        self._retry_max_s = retry_max_s
        self._min_commit_interval_s = max(0.0, min_commit_interval_s)
        self._pace_rows = max(1, min(pace_rows, max_commit_rows))
        self._paced: asyncio.Future[None] | None = None  # the pacing's wait, while it runs
        self._last_commit_s = -float("inf")  # start of the last commit (time.perf_counter)
        self._pending: deque[_Item] = deque()
        self._buffered_rows = 0
        self._wakeup = asyncio.Event()
        self._writer: ReadingsWriter | None = None
        self._conn: psycopg.AsyncConnection | None = None
        self._task: asyncio.Task | None = None
        self._committing: list[_Item] = []
        self._metrics_shard = metrics_shard
        self.commits = 0
        self.database_ok = True
        # Done once a commit fails because the database cannot be reached; one future for all
        # the batches waiting meanwhile (a new one after a commit succeeds that follows a
        # failed one).
        self._down: asyncio.Future[None] | None = None
        # Why the last commit failed while rows wait ("" once one succeeds): what a
        # refused client is told (``disk_full``: PostgreSQL's 53100, the server's disk).
        self.cause = ""

    @property
    def buffered_rows(self) -> int:
        return self._buffered_rows

    def submit(self, rows: DeviceRows) -> asyncio.Future:
        """Queue rows; the future resolves to the mask of rows that were new once committed."""
        if self._buffered_rows + len(rows) > self._max_buffered_rows:
            raise Backpressure(f"{self._buffered_rows} rows are waiting for the database")
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())
        future: asyncio.Future = asyncio.get_running_loop().create_future()
        self._pending.append((rows, future))
        self._buffered_rows += len(rows)
        self._wakeup.set()
        paced = self._paced
        if paced is not None and self._buffered_rows >= self._pace_rows and not paced.done():
            paced.set_result(None)  # enough rows wait: the next commit goes now
        return future

    async def close(self) -> None:
        """Stop the commit loop and close the connection (pending futures stay unresolved)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self._drop_connection()

    async def _run(self) -> None:
        delay = self._retry_initial_s
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._pace()
            batch = self._committing = self._take()
            metrics.set_gauge(
                "vigil_write_buffer_rows", self._buffered_rows, shard=self._metrics_shard
            )
            try:
                writer = await self._ensure_writer()
                self._last_commit_s = started = time.perf_counter()
                masks = await writer.write([rows for rows, _ in batch])
                elapsed = time.perf_counter() - started
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError) as exc:
                # The database is unreachable: keep the rows, reconnect, try again.
                log.warning("database unreachable, %d rows kept: %s", self._buffered_rows, exc)
                self.database_ok = False
                if not (down := self.down_signal()).done():
                    down.set_result(None)
                self.cause = "disk_full" if isinstance(exc, psycopg.errors.DiskFull) else "down"
                self._pending.extendleft(reversed(batch))
                await self._drop_connection()
                await asyncio.sleep(delay)
                delay = min(delay * 2, self._retry_max_s)
                continue
            except Exception as exc:
                log_failure(log, "commit of %d batches failed", exc, len(batch))
                await self._write_one_by_one(batch)
                continue
            delay = self._retry_initial_s
            self.database_ok = True
            if self._down is not None and self._down.done():
                # A new signal for the next outage. One not fired yet is kept: batches that
                # took it before this commit (theirs is a later one) still wait on it.
                self._down = None
            self.cause = ""
            self.commits += 1
            metrics.observe("vigil_commit_seconds", elapsed, shard=self._metrics_shard)
            self._settle(batch, masks)
            metrics.set_gauge(
                "vigil_write_buffer_rows", self._buffered_rows, shard=self._metrics_shard
            )

    async def _pace(self) -> None:
        """Let more batches join the next commit until ``min_commit_interval_s`` has passed
        since the last one started, or until ``pace_rows`` rows wait (``submit`` ends the
        wait then: one check per batch, no task or timer)."""
        wait = self._last_commit_s + self._min_commit_interval_s - time.perf_counter()
        if wait <= 0 or self._buffered_rows >= self._pace_rows:
            return
        loop = asyncio.get_running_loop()
        paced = self._paced = loop.create_future()
        timer = loop.call_later(wait, _end_wait, paced)
        try:
            await paced
        finally:
            timer.cancel()
            self._paced = None

    def down_signal(self) -> asyncio.Future[None]:
        """Done once a commit fails because the database cannot be reached (already done if
        the last one did): its waiters need not wait for their own commit any longer. Shared
        by every waiter, so waiting on it costs no task per batch."""
        if self._down is None:
            self._down = asyncio.get_running_loop().create_future()
        return self._down

    async def drain(self) -> None:
        """Wait until everything submitted so far is committed (or has failed)."""
        waiting = [future for _, future in (*self._committing, *self._pending)]
        await asyncio.gather(*waiting, return_exceptions=True)

    def waiting_for(self, device_id: object) -> list[asyncio.Future]:
        """The futures of a device's rows not committed yet."""
        # A failed commit's batch is back in ``_pending`` and still in ``_committing``.
        items = {id(f): (rows, f) for rows, f in (*self._committing, *self._pending)}
        return [f for rows, f in items.values() if rows.device_id == device_id and not f.done()]

    def _take(self) -> list[_Item]:
        batch: list[_Item] = []
        rows = 0
        while self._pending and (
            not batch or rows + len(self._pending[0][0]) <= self._max_commit_rows
        ):
            item = self._pending.popleft()
            rows += len(item[0])
            batch.append(item)
        return batch

    def _settle(self, batch: list[_Item], masks: list[np.ndarray]) -> None:
        results = iter(masks)
        for rows, future in batch:
            self._buffered_rows -= len(rows)
            mask = next(results) if len(rows) else np.zeros(0, bool)
            if not future.done():
                future.set_result(mask)

    async def _write_one_by_one(self, batch: list[_Item]) -> None:
        """Isolate a batch the database refuses, so that it fails alone."""
        for i, item in enumerate(batch):
            rows, future = item
            try:
                writer = await self._ensure_writer()
                masks = await writer.write([rows])
            except (psycopg.OperationalError, psycopg.InterfaceError, OSError):
                self._pending.extendleft(reversed(batch[i:]))
                await self._drop_connection()
                return
            except Exception as exc:
                self._buffered_rows -= len(rows)
                if not future.done():
                    future.set_exception(exc)
                continue
            self._settle([item], masks)

    async def _ensure_writer(self) -> ReadingsWriter:
        if self._writer is None or self._conn is None or self._conn.closed:
            self._conn = await self._connect()
            self._writer = ReadingsWriter(self._conn)
        return self._writer

    async def _drop_connection(self) -> None:
        conn, self._conn, self._writer = self._conn, None, None
        if conn is not None:
            with contextlib.suppress(Exception):  # already broken
                await conn.close()


def _end_wait(paced: asyncio.Future[None]) -> None:
    if not paced.done():
        paced.set_result(None)
