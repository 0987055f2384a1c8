"""The base of every request body, the text type every free-text field uses, and the one
JSON parser every request body and WebSocket message goes through.

Closed and strict: an unknown or misspelt field is a 422 naming it (a typo in an alert limit
must never be silently ignored), and nothing is coerced (``"120"`` is not a number, ``true``
is not 1 s, a Unix number is not a timestamp). Text refuses what PostgreSQL cannot store
(NUL) and what is not valid Unicode (a lone UTF-16 surrogate), so both are a 422 instead of a
500. JSON with a key given twice is refused (which one would win is the parser's whim), and
JSON nested too deeply for the parser is a clear refusal, not a crash.

FastAPI validates an already parsed body, where pydantic's strict mode would refuse even the
ISO 8601 strings and UUID strings the API documents; ``Timestamp``, ``Id`` and
``lenient_enum`` accept exactly those JSON strings (and still refuse numbers).
"""

from __future__ import annotations

import email.message
import json
import re
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import AfterValidator, AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field


class RequestModel(BaseModel):
    """Base of every request body: unknown fields forbidden, no type coercion."""

    model_config = ConfigDict(extra="forbid", strict=True)


def clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    if any("\ud800" <= ch <= "\udfff" for ch in value):
        raise ValueError("must not contain unpaired UTF-16 surrogates")
    return value


Text = Annotated[str, AfterValidator(clean_text)]


def _json_string(value: Any) -> Any:
    """Only a JSON string (or an already typed value, from Python callers) may be parsed."""
    if isinstance(value, (int, float, bool)):
        raise ValueError("must be a string")
    return value


_ISO_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\d[Tt ]")


def _iso_string(value: Any) -> Any:
    """pydantic would also read a Unix time, as a number or a numeric string: refuse both."""
    if isinstance(value, str) and _ISO_DATE_TIME.match(value):
        return value
    if isinstance(value, datetime):
        return value
    raise ValueError("must be an ISO 8601 date-time string with a UTC offset")


Timestamp = Annotated[AwareDatetime, BeforeValidator(_iso_string), Field(strict=False)]
"""An ISO 8601 date-time string with a UTC offset (a Unix time is refused)."""

Id = Annotated[uuid.UUID, BeforeValidator(_json_string), Field(strict=False)]
"""A UUID in its string form."""


def lenient_enum(**kwargs: Any) -> Any:
    """``Field`` for an enum member given by its JSON value (a string; nothing is coerced)."""
    return Field(strict=False, **kwargs)


# -- JSON parsing -------------------------------------------------------------------------


class JsonRefused(ValueError):
    """Valid JSON Vigil will not read: ``loc`` names where, ``msg`` says why."""

    def __init__(self, loc: list[str | int], msg: str, kind: str) -> None:
        super().__init__(msg)
        self.loc, self.msg, self.kind = loc, msg, kind


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise JsonRefused([key], f"duplicate key {key!r} in a JSON object", "json_invalid")
            seen.add(key)
    return obj


# One decoder for every call: ``json.loads`` with a hook builds a new one each time (a tenth
# of a one-reading batch's parse).
_STRICT_DECODER = json.JSONDecoder(object_pairs_hook=_unique_keys)


def loads_strict(text: str | bytes) -> Any:
    """``json.loads`` that refuses duplicate keys and nesting too deep for the parser.

    Raises ``JsonRefused`` for those and ``json.JSONDecodeError`` for text that is not JSON
    (both are ``ValueError``); bytes in UTF-8, -16 or -32 and a leading BOM are treated as
    ``json.loads`` treats them."""
    if isinstance(text, bytes | bytearray):
        text = text.decode(json.detect_encoding(text), "surrogatepass")
    elif text.startswith("\ufeff"):
        raise json.JSONDecodeError("Unexpected UTF-8 BOM (decode using utf-8-sig)", text, 0)
    try:
        return _STRICT_DECODER.decode(text)
    except RecursionError:
        raise JsonRefused([], "JSON nested too deeply", "json_invalid") from None


def is_json(headers: Mapping[str, str]) -> bool:
    """Whether a request's body is JSON as FastAPI decides it (no content type, or
    ``application/json`` or ``application/*+json``)."""
    content_type = headers.get("content-type")
    if not content_type:
        return True
    message = email.message.Message()
    message["content-type"] = content_type
    subtype = message.get_content_subtype()
    return message.get_content_maintype() == "application" and (
        subtype == "json" or subtype.endswith("+json")
    )


class _StrictJsonRequest(Request):
    async def json(self) -> Any:
        if not hasattr(self, "_json"):
            self._json = loads_strict(await self.body())
        return self._json


class StrictJsonRoute(APIRoute):
    """Route class of every router: a JSON body is parsed by ``loads_strict`` (once), and a
    refusal is a 422 naming the key, before FastAPI validates the body."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        if self.body_field is None:
            return handler

        async def strict_json(request: Request) -> Response:
            request = _StrictJsonRequest(request.scope, request.receive)
            if is_json(request.headers) and await request.body():
                try:
                    await request.json()
                except JsonRefused as refused:
                    raise RequestValidationError(
                        [{"loc": ["body", *refused.loc], "msg": refused.msg, "type": refused.kind}]
                    ) from None
                except ValueError:
                    pass  # not JSON: FastAPI answers it as it always does
            return await handler(request)

        return strict_json
