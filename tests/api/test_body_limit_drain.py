"""The body ceiling reads what it refuses to its end before answering (up to
``DRAIN_BYTES`` past the ceiling), so that the server does not close a connection with unread
data in it: the kernel would reset it, and the reset can destroy the 413 on its way (seen
once in CI: the client got the 413's head and then a broken connection). These drive the
middleware as the server does, message by message, and record the order of events."""

from __future__ import annotations

from typing import Any

import pytest
from starlette.types import Message, Scope

from api.body_limit import DEFAULT_BYTES, DRAIN_BYTES, BodyLimit

CHUNK = 1_000_000


class Client:
    """The server side of one request: the body in chunks, and what the app sent."""

    def __init__(self, body_bytes: int) -> None:
        self.left = body_bytes
        self.events: list[str] = []
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        n = min(CHUNK, self.left)
        self.left -= n
        self.events.append("read")
        return {"type": "http.request", "body": b"x" * n, "more_body": self.left > 0}

    async def send(self, message: Message) -> None:
        self.events.append(message["type"])
        self.sent.append(message)

    def status(self) -> int:
        return self.sent[0]["status"]

    def closes(self) -> bool:
        return (b"connection", b"close") in self.sent[0]["headers"]


def scope(headers: list[tuple[bytes, bytes]], method: str = "POST") -> Scope:
    return {"type": "http", "method": method, "path": "/v1/devices/x/readings", "headers": headers}


async def app_reading_the_body(scope: Scope, receive: Any, send: Any) -> None:
    """Reads the body as FastAPI does, then answers 200; an HTTPException met while reading
    is answered as FastAPI's handler would."""
    from fastapi import HTTPException

    try:
        while (await receive()).get("more_body", False):
            pass
    except HTTPException as exc:
        await send({"type": "http.response.start", "status": exc.status_code, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def length(n: int) -> list[tuple[bytes, bytes]]:
    return [(b"content-length", str(n).encode())]


CHUNKED = [(b"transfer-encoding", b"chunked")]


async def test_a_declared_body_over_the_ceiling_is_read_to_its_end_before_the_413() -> None:
    size = DEFAULT_BYTES + 3 * CHUNK + 17
    client = Client(size)
    await BodyLimit(app_reading_the_body)(scope(length(size)), client.receive, client.send)
    assert client.status() == 413 and client.left == 0
    first_send = client.events.index("http.response.start")
    assert set(client.events[:first_send]) == {"read"} and "read" not in client.events[first_send:]
    assert not client.closes()  # all of it read: the connection can be kept


async def test_a_declared_body_far_over_the_ceiling_is_refused_unread_and_closed() -> None:
    size = DEFAULT_BYTES + DRAIN_BYTES + 1
    client = Client(size)
    await BodyLimit(app_reading_the_body)(scope(length(size)), client.receive, client.send)
    assert client.status() == 413 and client.left == size  # not one byte read
    assert client.closes()


async def test_a_client_waiting_for_a_go_ahead_is_refused_before_it_sends_the_body() -> None:
    size = DEFAULT_BYTES + CHUNK
    client = Client(size)
    headers = [*length(size), (b"expect", b"100-continue")]
    await BodyLimit(app_reading_the_body)(scope(headers), client.receive, client.send)
    assert client.status() == 413 and client.left == size and client.events[0] != "read"
    assert client.closes()


async def test_a_chunked_body_over_the_ceiling_is_read_to_its_end_then_refused() -> None:
    size = DEFAULT_BYTES + 5 * CHUNK
    client = Client(size)
    await BodyLimit(app_reading_the_body)(scope(CHUNKED), client.receive, client.send)
    assert client.status() == 413 and client.left == 0
    assert not client.closes()


async def test_a_chunked_body_far_over_the_ceiling_is_cut_off_and_the_connection_closed() -> None:
    size = DEFAULT_BYTES + DRAIN_BYTES + 10 * CHUNK
    client = Client(size)
    await BodyLimit(app_reading_the_body)(scope(CHUNKED), client.receive, client.send)
    assert client.status() == 413 and client.closes()
    read = size - client.left
    assert DEFAULT_BYTES + DRAIN_BYTES < read <= DEFAULT_BYTES + DRAIN_BYTES + 2 * CHUNK


@pytest.mark.parametrize("headers", [length(DEFAULT_BYTES), length(10), [], CHUNKED])
async def test_a_body_within_the_ceiling_reaches_the_app_whole(
    headers: list[tuple[bytes, bytes]],
) -> None:
    size = int(headers[0][1]) if headers and headers[0][0] == b"content-length" else 2 * CHUNK
    client = Client(size)
    await BodyLimit(app_reading_the_body)(scope(headers), client.receive, client.send)
    assert client.status() == 200 and client.left == 0 and not client.closes()


async def test_a_client_gone_while_its_body_is_drained_gets_no_keep_alive() -> None:
    size = DEFAULT_BYTES + CHUNK
    events: list[Message] = [{"type": "http.disconnect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        return events[0]

    async def send(message: Message) -> None:
        sent.append(message)

    await BodyLimit(app_reading_the_body)(scope(length(size)), receive, send)
    assert sent[0]["status"] == 413 and (b"connection", b"close") in sent[0]["headers"]
