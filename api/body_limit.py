"""A ceiling on every request body, applied before the body is read.

The routes check what they parse (at most 10,000 readings a batch, 1,000 Nightscout
documents, a 50 MB history file), but only after FastAPI or the route has read the whole body
into memory: without a ceiling, one request of a gigabyte of JSON holds a replica's memory
and CPU before it is refused. This middleware answers 413 at once when the declared
``Content-Length`` is over the route's ceiling, and stops reading a body sent without one
(chunked) as soon as it passes it.

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
            await _refuse(send, too_large(limit))
            return
        received = 0

        async def bounded() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:  # FastAPI re-raises an HTTPException met reading a body
                    raise too_large(limit)
            return message

        await self.app(scope, bounded, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed length itself
    return None


async def _refuse(send: Send, refused: HTTPException) -> None:
    body = json.dumps({"detail": refused.detail}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": refused.status_code,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),  # the unread body is not read: no keep-alive
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
