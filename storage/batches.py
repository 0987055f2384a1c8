"""Hot per-request statements sent together: one statement for every request of a kind a
replica receives at once.

A replica serving many clients receives their requests in bursts (one pass of the event
loop hands it every request that arrived on its connections). Each audited read still
checks its own grant and writes its own audit entry, and each upload its own grant, but a
:class:`Batcher` sends all of one kind that reach it in one pass of the event loop as one
statement (``readings.audited_reads``, ``access.device_grants``): one round trip and one
statement's fixed cost for all of them, on the server and in the client library. Nothing
waits for a batch to fill: the statement goes out at the end of the pass in which its first
request arrived, so a lone request is sent at once, and one that arrives while a statement
is in flight goes out in the next. At most ``max_in_flight`` statements of a batcher are in
flight at once (each on its own pooled connection, as many as the pool holds); requests that
arrive while that many are out wait together and go out as one statement when the first
of them returns, so under load a statement carries more requests instead of queueing for a
connection with the few it was cut with.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

from storage.pools import open_pool

Request = TypeVar("Request")
Answer = TypeVar("Answer")

# At most this many requests in one statement (its arrays); more go out in further ones.
MAX_BATCH = 256
# Connections of a replica's batch pool (besides its main pool): statements in flight at once.
BATCH_POOL_MAX = 4
# Statements of one batcher in flight at once. Fewer, fuller statements cost less: 64 clients
# reading through two replicas took 4,328-4,819 reads/s at 2 (8.8 reads a statement), against
# 3,811-3,989 with as many as the pool held (6.3); at 1, 4,623-4,777 (13.3), but one slow
# read (a 10,000-reading window) would then hold every other read of the replica behind it.
MAX_IN_FLIGHT = 2


async def open_batch_pool(url: str) -> asyncpg.Pool:
    """The pool the batched statements are sent on: its connections plan each once (a generic
    plan, partitions pruned when it runs) instead of for every batch. PostgreSQL's default
    keeps planning the audited reads' statement for its parameters every time, and planning
    is most of its cost: 1.38 ms a statement against 0.38 ms with the generic plan (one
    read each, measured on the test database, a handful of weekly partitions; more
    partitions only add planning)."""
    return await open_pool(
        url,
        min_size=1,
        max_size=BATCH_POOL_MAX,
        server_settings={"plan_cache_mode": "force_generic_plan"},
    )


def by_ordinality(rows: list[asyncpg.Record], count: int) -> list[asyncpg.Record | None]:
    """A batched statement's rows in its requests' order, by the ``n`` each carries (its
    request's ordinality in the statement's arrays); None for a request nothing matched."""
    found: list[asyncpg.Record | None] = [None] * count
    for row in rows:
        found[row["n"] - 1] = row
    return found


class Batcher(Generic[Request, Answer]):
    """Requests answered by ``send(pool, requests)`` (answers in the requests' order), sent
    together as described above."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        send: Callable[[asyncpg.Pool, list[Request]], Awaitable[list[Answer]]],
        max_batch: int = MAX_BATCH,
        max_in_flight: int = MAX_IN_FLIGHT,
    ) -> None:
        self._pool = pool
        self._statement = send
        self._max_batch = max_batch
        self._max_in_flight = max_in_flight
        self._waiting: list[tuple[Request, asyncio.Future[Answer]]] = []
        self._flush_scheduled = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self.statements = 0  # sent so far (the batching's effect, for tests)

    async def ask(self, request: Request) -> Answer:
        """``request``'s answer, from the next statement sent."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Answer] = loop.create_future()
        self._waiting.append((request, future))
        self._schedule_flush()
        return await future

    def _schedule_flush(self) -> None:
        """Send what waits at the end of this pass of the event loop (once per pass)."""
        if not self._flush_scheduled:
            self._flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._flush_scheduled = False
        while self._waiting and len(self._in_flight) < self._max_in_flight:
            batch = self._waiting[: self._max_batch]
            del self._waiting[: self._max_batch]
            task = asyncio.get_running_loop().create_task(self._send(batch))
            self._in_flight.add(task)
            task.add_done_callback(self._sent)

    def _sent(self, task: asyncio.Task[None]) -> None:
        """A statement returned: what waited for a free place goes out now, together."""
        self._in_flight.discard(task)
        if self._waiting:
            self._schedule_flush()

    async def _send(self, batch: list[tuple[Request, asyncio.Future[Answer]]]) -> None:
        self.statements += 1
        try:
            answers = await self._statement(self._pool, [request for request, _ in batch])
        except asyncio.CancelledError:
            for _, future in batch:
                future.cancel()
            raise
        except Exception as exc:  # every request of the statement fails as it would alone
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            return
        for (_, future), answer in zip(batch, answers, strict=True):
            if not future.done():  # its request was cancelled (client gone): nothing to answer
                future.set_result(answer)
