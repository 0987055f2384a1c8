"""A live stream takes every message already queued in one pass (sent back to back), and
never past the sentinel that ends the stream."""

from __future__ import annotations

import asyncio

from api.routes.stream import _ready


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
