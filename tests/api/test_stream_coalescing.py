"""A live stream takes every message already queued in one pass (sent back to back), and
never past the sentinel that ends the stream; a quiet stream gets a ping, a busy one none."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid

import pytest

from api.routes import stream
from api.routes.stream import PING, LiveHub, Subscriber, _ready


def queued(*items: str | None) -> asyncio.Queue:
    queue: asyncio.Queue = asyncio.Queue()
    for item in items:
        queue.put_nowait(item)
    return queue


def test_every_message_queued_behind_the_first_goes_in_the_same_pass() -> None:
    queue = queued("b", "c", "d")
    assert _ready("a", queue) == ["a", "b", "c", "d"]
    assert queue.empty()


def test_the_pass_stops_at_the_end_of_the_stream() -> None:
    queue = queued("b", None, "late")
    assert _ready("a", queue) == ["a", "b", None]
    assert queue.get_nowait() == "late"  # left unsent: the stream has ended
    assert _ready(None, queued("x")) == [None]


def test_a_lone_message_goes_alone() -> None:
    assert _ready("a", queued()) == ["a"]


QUIET_S = 0.2  # PING_S in these tests


@pytest.fixture
def quick_pings(monkeypatch: pytest.MonkeyPatch) -> Subscriber:
    monkeypatch.setattr(stream, "PING_S", QUIET_S)
    return Subscriber(user_id=uuid.uuid4())


async def test_a_quiet_stream_gets_a_ping_after_the_interval(quick_pings: Subscriber) -> None:
    started = time.monotonic()
    assert await asyncio.wait_for(quick_pings.next_item(), 5) == PING
    assert QUIET_S * 0.9 <= time.monotonic() - started < QUIET_S * 5
    quick_pings.queue.put_nowait("reading")
    assert await quick_pings.next_item() == "reading"  # queued: no wait, no ping


async def test_a_stream_whose_messages_keep_coming_gets_no_ping(quick_pings: Subscriber) -> None:
    async def feed() -> None:
        for i in range(12):  # 0.6 s of messages, one every 0.05 s: never quiet for 0.2 s
            await asyncio.sleep(QUIET_S / 4)
            quick_pings.offer(f"m{i}")
        quick_pings.close("done")

    feeder = asyncio.ensure_future(feed())
    got = []
    while (item := await asyncio.wait_for(quick_pings.next_item(), 5)) is not None:
        got.append(item)
    await feeder
    assert got == [f"m{i}" for i in range(12)]
    # Once they stop, the ping comes again after a quiet interval.
    assert await asyncio.wait_for(quick_pings.next_item(), 5) == PING


async def test_a_stream_that_ends_stops_its_ping(quick_pings: Subscriber) -> None:
    """The socket goes away while its writer waits: the writer is cancelled mid-wait, and the
    hub's ``leave`` must stop the ping its wait armed (left armed, it would come due on a
    subscriber that still looks like it is waiting)."""
    hub = LiveHub("", None)  # type: ignore[arg-type]  # leave() touches no database
    waiting = asyncio.ensure_future(quick_pings.next_item())
    await asyncio.sleep(0)
    waiting.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await waiting
    hub.leave(quick_pings)
    await asyncio.sleep(QUIET_S * 2)
    assert quick_pings.queue.empty()
