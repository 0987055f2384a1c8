"""A request id per HTTP request (and per WebSocket connection), in every log line it causes.

An incoming ``X-Request-ID`` is kept when it is well formed (a proxy or the gateway may
have set it), otherwise a new one is made; the response carries it back. It lives in a
context variable, so log records made while serving the request get it as ``request_id``
(Ray's JSON log format writes it out), and the ingest path hands it to the shard, whose
commit log and the alerts' NOTIFY carry it on to the notifier.

Under Ray Serve, Serve itself appends an ``X-Request-ID`` to every response: the incoming
one, whatever it is, or one it made (which then reaches the app as the incoming one). The
app then adds the header only when it replaced a malformed incoming id, so that response
carries Vigil's id first and Serve's echo of the malformed one after it. (Installing this
middleware in front of Serve's, through ``RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH``, was
tried: with the HAProxy ingress it made a third of the requests end in dropped connections.)

A plain ASGI middleware, not ``BaseHTTPMiddleware``: it runs on every reading upload.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from typing import Any

HEADER = b"x-request-id"
_WELL_FORMED = re.compile(rb"[A-Za-z0-9._:-]{8,128}")
_current: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


def current() -> str | None:
    """The id of the request being served, if any."""
    return _current.get()


def accept_or_make(incoming: bytes | None) -> str:
    """The incoming id if well formed (8-128 of ``A-Za-z0-9._:-``), else a new one."""
    if incoming is not None and _WELL_FORMED.fullmatch(incoming):
        return incoming.decode("ascii")
    return uuid.uuid4().hex


# A scope key a server sets when nothing outside answers with the id (``api.read_listener``:
# Serve's listener and the read listener serve the same app): the header is then added.
RESPOND = "vigil.respond_request_id"


class RequestIdMiddleware:
    """``respond=False`` when something outside (Serve) answers with the incoming id: the
    header is then added only when the incoming id was replaced (or the scope asks for it,
    ``RESPOND``)."""

    def __init__(self, app: Any, respond: bool = True) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = next((v for k, v in scope.get("headers", ()) if k == HEADER), None)
        rid = accept_or_make(incoming)
        replaced = incoming is None or rid != incoming.decode("latin-1")
        if replaced:
            others = [h for h in scope.get("headers", ()) if h[0] != HEADER]
            scope = {**scope, "headers": [*others, (HEADER, rid.encode())]}

        async def send_with_id(message: dict) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                headers = [h for h in message.get("headers", ()) if h[0].lower() != HEADER]
                message = {**message, "headers": [*headers, (HEADER, rid.encode())]}
            await send(message)

        token = _current.set(rid)
        try:
            respond = self.respond or replaced or scope.get(RESPOND, False)
            await self.app(scope, receive, send_with_id if respond else send)
        finally:
            _current.reset(token)


def install_log_field() -> None:
    """Give every log record made while serving a request its ``request_id`` (once per
    process; a record that already names one keeps it)."""
    factory = logging.getLogRecordFactory()
    if getattr(factory, "vigil_request_id", False):
        return

    def make(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = factory(*args, **kwargs)
        rid = _current.get()
        if rid is not None and not hasattr(record, "request_id"):
            record.request_id = rid
        return record

    make.vigil_request_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(make)
