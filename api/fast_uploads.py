"""The readings upload answered below FastAPI's routing: ``POST /v1/devices/{id}/readings``.

Gateways and uploaders send a batch every few seconds to minutes; FastAPI's per-request
machinery (route matching across every router, the dependency graph, the request object,
the response model validated and encoded again) costs about as much as the batch's own
parsing. :class:`FastUploads`, a pure ASGI middleware beside ``api.fast_reads.FastReads``,
recognises the common well-formed upload and calls what the route calls: the same
credential check (``authorise_upload``, batched), the same ``upload_answer`` (the body
site's check, ``store_batch`` with its ``upload`` log line and errors), the same answer.
The batch of the common form is read straight into arrays (``api.batch_parse``), any
other parsed strictly (``loads_strict``) and validated as the route's model. Anything else
goes on to FastAPI with its body unchanged: another method or path form, a query string, a
body that is not JSON by its content type, that does not parse strictly or validate as the
route's model, a request without a bearer token.
Nothing has been checked or stored when it hands a request on; once it has checked the
credential, it answers itself.
"""

from __future__ import annotations

import re
import uuid

from fastapi.encoders import jsonable_encoder
from pydantic import ValidationError
from starlette.datastructures import Headers
from starlette.responses import JSONResponse, Response
from starlette.routing import get_route_path
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.batch_parse import parse_batch
from api.fast_reads import bearer, handled
from api.routes.readings import ReadingsUpload, batch_of, upload_answer
from api.routes.upload_tokens import authorise_upload
from api.schemas import is_json, loads_strict

_PATH = re.compile(
    r"/v1/devices/([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"/readings"
)


class FastUploads:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.answered = 0  # requests answered here rather than by FastAPI (tests read it)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["method"] != "POST"
            or scope.get("query_string")
            or (matched := _PATH.fullmatch(get_route_path(scope))) is None
        ):
            await self.app(scope, receive, send)
            return
        try:
            messages = await _body_messages(receive)
        except Exception as exc:  # the body limit's 413, met while reading
            await (await handled(scope, exc))(scope, receive, send)
            return
        response = await self._answer(scope, matched, messages)
        if response is None:
            await self.app(scope, _replay(messages, receive), send)
            return
        self.answered += 1
        await response(scope, receive, send)

    async def _answer(
        self, scope: Scope, matched: re.Match[str], messages: list[Message]
    ) -> Response | None:
        """The answer, or None to hand the request on to FastAPI (nothing checked yet)."""
        headers = Headers(scope=scope)
        token = bearer(headers)
        if token is None or not is_json(headers) or messages[-1]["type"] != "http.request":
            return None
        body = b"".join(m.get("body", b"") for m in messages)
        parsed = parse_batch(body, streamed=False)
        if parsed is not None:
            batch = parsed[1]
        else:
            try:
                batch = batch_of(ReadingsUpload.model_validate(loads_strict(body)))
            except (ValueError, ValidationError):  # not JSON, refused, or not the model
                return None
        state = scope["app"].state
        try:
            device = await authorise_upload(
                state.keys, token, uuid.UUID(matched.group(1)), state.upload_checks
            )
            answer = await upload_answer(batch, device, state.router, state.config, state.pool)
        except Exception as exc:
            return await handled(scope, exc)
        return answer if isinstance(answer, Response) else JSONResponse(jsonable_encoder(answer))


async def _body_messages(receive: Receive) -> list[Message]:
    """The request's body messages, up to the last (or a disconnect)."""
    messages = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """``receive`` that gives the messages already read first."""
    pending = list(messages)

    async def replay() -> Message:
        if pending:
            return pending.pop(0)
        return await receive()

    return replay
