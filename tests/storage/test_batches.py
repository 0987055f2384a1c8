"""storage.batches.Batcher: requests of one pass go out together, and at most
``max_in_flight`` statements are out at once, what arrives meanwhile going out together when
one returns. The statement here is a plain coroutine (the pool argument is passed through
untouched); tests/api/test_fast_reads.py holds the batcher on a real database."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from storage.batches import Batcher


class Statements:
    """A statement that records each batch it is sent and returns when released."""

    def __init__(self) -> None:
        self.sent: list[list[int]] = []
        self.release = asyncio.Event()

    async def __call__(self, pool: Any, requests: list[int]) -> list[int]:
        assert pool == "pool"
        self.sent.append(list(requests))
        await self.release.wait()
        return [r * 10 for r in requests]


async def _passes(n: int = 5) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


async def test_requests_of_one_pass_go_out_as_one_statement() -> None:
    statements = Statements()
    statements.release.set()
    batcher: Batcher[int, int] = Batcher("pool", statements)  # type: ignore[arg-type]
    answers = await asyncio.gather(*(batcher.ask(i) for i in range(5)))
    assert answers == [0, 10, 20, 30, 40]
    assert statements.sent == [[0, 1, 2, 3, 4]]


@pytest.mark.parametrize("in_flight", [1, 2])
async def test_what_arrives_while_the_limit_is_out_waits_and_goes_out_together(
    in_flight: int,
) -> None:
    statements = Statements()
    batcher: Batcher[int, int] = Batcher(
        "pool",  # type: ignore[arg-type]
        statements,
        max_in_flight=in_flight,
    )
    first = []
    for i in range(in_flight):  # in passes of their own: a statement each
        first.append(asyncio.ensure_future(batcher.ask(i)))
        await _passes()
    assert statements.sent == [[i] for i in range(in_flight)]
    later = [asyncio.ensure_future(batcher.ask(100 + i)) for i in range(7)]
    await _passes()
    await _passes()
    later += [asyncio.ensure_future(batcher.ask(200 + i)) for i in range(3)]
    await _passes()
    assert len(statements.sent) == in_flight, "nothing more goes out while the limit is out"
    statements.release.set()
    await asyncio.gather(*first, *later)
    assert [t.result() for t in later] == [r * 10 for r in [*range(100, 107), *range(200, 203)]]
    assert statements.sent[in_flight:] == [[*range(100, 107), *range(200, 203)]]


async def test_a_batch_larger_than_max_batch_is_cut_but_still_limited() -> None:
    statements = Statements()
    batcher: Batcher[int, int] = Batcher(
        "pool",  # type: ignore[arg-type]
        statements,
        max_batch=4,
        max_in_flight=2,
    )
    asks = asyncio.gather(*(batcher.ask(i) for i in range(10)))
    await _passes()
    assert [len(b) for b in statements.sent] == [4, 4], "the last 2 wait for a place"
    statements.release.set()
    answers = await asks
    assert answers == [i * 10 for i in range(10)]
    assert [len(b) for b in statements.sent] == [4, 4, 2]
    assert sorted(r for b in statements.sent for r in b) == list(range(10))


async def test_a_failed_statement_fails_its_requests_and_frees_its_place() -> None:
    calls: list[list[int]] = []

    async def failing_once(pool: Any, requests: list[int]) -> list[int]:
        calls.append(list(requests))
        if len(calls) == 1:
            raise RuntimeError("connection lost")
        return requests

    batcher: Batcher[int, int] = Batcher("pool", failing_once, max_in_flight=1)  # type: ignore[arg-type]
    with pytest.raises(RuntimeError, match="connection lost"):
        await batcher.ask(1)
    # Its place is free again: the next request goes out (it would wait for ever otherwise).
    assert await asyncio.wait_for(batcher.ask(2), 5) == 2
