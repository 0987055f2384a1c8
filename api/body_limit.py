"""A ceiling on every request body, applied before the body is read.

The routes check what they parse (at most 10,000 readings a batch, 1,000 Nightscout
documents, a 50 MB history file), but only after FastAPI or the route has read the whole body
into memory: without a ceiling, one request of a gigabyte of JSON holds a replica's memory
and CPU before it is refused. This middleware answers 413 when the declared
``Content-Length`` is over the route's ceiling, before anything reads the body, and cuts off
a body sent without one (chunked) as soon as it passes it.

What it refuses it still reads to its end, dropping it, up to ``DRAIN_BYTES`` past the
ceiling, before answering: a server that closes a connection with unread data in it makes
the kernel reset the connection, and the reset can destroy the 413 on its way (the client,
still sending, then sees a broken connection instead of the answer, and a device may retry
the same upload for ever). A body longer than that is not read: the 413 goes out with
``Connection: close`` and may be lost to the reset. A client that sends
``Expect: 100-continue`` is answered at once, before it sends any of the body, whatever its
length.

The ceiling is ``DEFAULT_BYTES`` (a 10,000-reading upload is about 0.6 MB) except on the two
routes that take files: history imports and FHIR bundles.
"""

from __future__ import annotations

import json
import re

from fastapi import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.routes.fhir.routes import MAX_BODY_BYTES as FHIR_BUNDLE_BYTES
from api.routes.history import MAX_FILE_BYTES as HISTORY_FILE_BYTES

DEFAULT_BYTES = 4_000_000
DRAIN_BYTES = 16_000_000  # past the ceiling: still read and dropped, for the 413 to arrive
ENVELOPE_BYTES = 1_000_000  # a multipart body's boundaries and headers around the file
# (path pattern, ceiling): routes whose own limit is higher. Their own checks still give
# their exact limit in their 413.
LARGER: tuple[tuple[re.Pattern[str], int], ...] = (
    (re.compile(r"^/v1/devices/[^/]+/import$"), HISTORY_FILE_BYTES + ENVELOPE_BYTES),
    (re.compile(r"^/fhir/r4/\$submit-cgm-bundle$"), FHIR_BUNDLE_BYTES + ENVELOPE_BYTES),
)


def ceiling(path: str) -> int:
    """The most bytes a request body to ``path`` may have."""
    for pattern, limit in LARGER:
        if pattern.match(path):
            return limit
    return DEFAULT_BYTES


def too_large(limit: int) -> HTTPException:
    return HTTPException(status_code=413, detail=f"request body larger than {limit:,} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = ceiling(scope["path"])
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            drained = (
                declared <= limit + DRAIN_BYTES
                and not _header(scope, b"expect")  # waits for a go-ahead: nothing sent yet
                and await _drain(receive, declared)
            )
            await _refuse(send, too_large(limit), close=not drained)
            return
        if not _header(scope, b"transfer-encoding"):
            # The server reads no more than the declared length (within the ceiling), and a
            # request with neither header has no body.
            await self.app(scope, receive, send)
            return
        received = 0
        unread = False  # cut off with more than DRAIN_BYTES of it left

        async def bounded() -> Message:
            nonlocal received, unread
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI re-raises an HTTPException met reading a body
                    if message.get("more_body", False):
                        unread = not await _drain(receive, DRAIN_BYTES)
                    raise too_large(limit)
            return message

        async def closing(message: Message) -> None:
            if unread and message["type"] == "http.response.start":
                headers = [*message.get("headers", []), (b"connection", b"close")]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, bounded, closing)


async def _drain(receive: Receive, budget: int) -> bool:
    """Read and drop the rest of a request body, at most ``budget`` bytes of it: whether
    it came to its end."""
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False  # the client went away
        budget -= len(message.get("body", b""))
        if budget < 0:
            return False
        if not message.get("more_body", False):
            return True


def _header(scope: Scope, name: bytes) -> bool:
    return any(n == name for n, _ in scope.get("headers", []))


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _refuse(send: Send, refused: HTTPException, *, close: bool) -> None:
    """The 413; ``close``: the body was left unread, the connection cannot be kept."""
    body = json.dumps({"detail": refused.detail}).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
    ]
    if close:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": refused.status_code, "headers": headers})
    await send({"type": "http.response.body", "body": body})
