"""The two polled reads answered below FastAPI's routing: ``GET /v1/devices/{id}/latest`` and
``GET /v1/devices/{id}/readings``.

Apps and followers poll these two routes; under load FastAPI's per-request machinery
(route matching across every router, the dependency graph, the request object, parameter
validation) cost more CPU than the read itself. :class:`FastReads`, a pure ASGI
middleware inside the app's own (request id, security headers, body limit), recognises
the common well-formed request and calls the very functions the routes call
(``latest_answer``, ``readings_answer``): the same token check, the same one-statement
grant check + audit entry + read, the same JSON, the same errors rendered by the app's
exception handlers. Anything it does not recognise goes on to FastAPI unchanged: another
method or path form, a query it does not parse exactly as the route would (an unknown,
repeated or empty parameter, an invalid value, a window the route refuses), no bearer
token, a token that does not verify (FastAPI then answers the 401 or 422 itself). Nothing
has been read or audited when it hands a request on; once it has read, it answers itself.
"""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi.exceptions import HTTPException
from fastapi.security.utils import get_authorization_scheme_param
from pydantic import AwareDatetime, TypeAdapter, ValidationError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Receive, Scope, Send

from api.errors import check_window
from api.routes.readings import (
    READINGS_LIMIT_DEFAULT,
    READINGS_LIMIT_MAX,
    latest_answer,
    readings_answer,
)
from api.tokens import InvalidToken
from storage.readings import ReadAudit, ReadRequest

_PATH = re.compile(
    r"/v1/devices/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/(latest|readings)"
)
# What the audit log records as the action: the route's path template, as FastAPI's would.
_ACTION = {
    "latest": "GET /v1/devices/{device_id}/latest",
    "readings": "GET /v1/devices/{device_id}/readings",
}
_BOUND: TypeAdapter[datetime] = TypeAdapter(AwareDatetime)
_INT: TypeAdapter[int] = TypeAdapter(int)


class FastReads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests answered here rather than by FastAPI (tests read it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "GET":
            matched = _PATH.fullmatch(get_route_path(scope))
            if matched is not None:
                response = await self._answer(scope, matched)
                if response is not None:
                    self.answered += 1
                    await response(scope, receive, send)
                    return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, matched: re.Match[str]) -> Response | None:
        """The answer, or None to hand the request on to FastAPI (nothing read yet)."""
        kind = matched.group(2)
        query = _query(scope, kind)
        if query is None:
            return None
        state = scope["app"].state
        headers = Headers(scope=scope)
        token = bearer(headers)
        if token is None:
            return None
        try:
            user_id = (await state.keys.verify(token)).user_id
        except InvalidToken:
            return None
        client = scope.get("client")
        audit = ReadAudit(
            actor_id=user_id,
            action=_ACTION[kind],
            client_addr=client[0] if client else None,
            user_agent=headers.get("user-agent"),
        )
        read = ReadRequest(audit, uuid.UUID(matched.group(1)), "readings", **query)
        try:
            if kind == "latest":
                return await latest_answer(state, read)
            return await readings_answer(state, read)
        except Exception as exc:
            return await handled(scope, exc)


def _query(scope: Scope, kind: str) -> dict[str, Any] | None:
    """The read's parameters, when the query string parses exactly as the route's would."""
    raw = scope.get("query_string", b"").decode("latin-1")
    if kind == "latest":
        return {"latest": True} if not raw else None
    params = parse_qsl(raw, keep_blank_values=True)
    names = [name for name, _ in params]
    if len(set(names)) != len(names) or not set(names) <= {"start", "end", "limit"}:
        return None
    given = dict(params)
    try:
        start = _BOUND.validate_python(given["start"]) if "start" in given else None
        end = _BOUND.validate_python(given["end"]) if "end" in given else None
        limit = _INT.validate_python(given["limit"]) if "limit" in given else None
        if limit is not None and not 1 <= limit <= READINGS_LIMIT_MAX:
            return None  # the route's 422
        check_window(start, end)
    except (ValidationError, HTTPException):
        return None
    return {"start": start, "end": end, "limit": limit or READINGS_LIMIT_DEFAULT}


def bearer(headers: Headers) -> str | None:
    """The bearer token, as the routes' ``OAuth2PasswordBearer`` reads it."""
    authorization = headers.get("authorization")
    scheme, token = get_authorization_scheme_param(authorization)
    if not authorization or scheme.lower() != "bearer" or not token:
        return None
    return token


async def handled(scope: Scope, exc: Exception) -> Response:
    """``exc`` answered by the app's exception handler for it, as FastAPI's exception
    middleware would (the handlers of ``api.errors`` and FastAPI's own); re-raised if none."""
    handlers = scope["app"].exception_handlers
    for cls in type(exc).__mro__:
        handler = handlers.get(cls)
        if handler is not None:
            return await handler(Request(scope), exc)
    raise exc
