"""Error bodies: one shape for every 4xx/5xx, matching FastAPI's own 422 ``detail`` list."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any, TypeVar

import asyncpg
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

T = TypeVar("T")
log = logging.getLogger(__name__)


class ErrorItem(BaseModel):
    loc: list[str | int] = Field(examples=[["body", "readings", 3, "value"]])
    msg: str = Field(examples=["700 mg/dL is outside the glucose sensor range 20-600 mg/dL"])
    type: str = Field(examples=["value_error"])


class ErrorBody(BaseModel):
    detail: str | list[ErrorItem] = Field(examples=["device not found"])


def check_window(
    start: datetime | None, end: datetime | None, names: tuple[str, str] = ("start", "end")
) -> None:
    """422 when a time window's end is not after its start."""
    if start is not None and end is not None and end <= start:
        raise error(422, f"{names[1]} must be after {names[0]}")


def error(status: int, message: str, headers: dict[str, str] | None = None) -> HTTPException:
    return HTTPException(status_code=status, detail=message, headers=headers)


def found(row: T | None, what: str) -> T:
    """``row``, or a 404 naming ``what`` when there is none (or it is not the caller's)."""
    if row is None:
        raise error(404, f"{what} not found")
    return row


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for the error codes a route can answer."""
    text = {
        401: "Missing, invalid or expired bearer token",
        403: "You follow this profile, but your share lacks the scope this needs",
        404: "Not found, or not yours",
        409: "Conflicts with what is stored",
        413: "Batch too large",
        422: "Invalid input; `detail` names each offending field",
        503: "Temporarily unavailable; retry after the `Retry-After` seconds",
    }
    return {code: {"model": ErrorBody, "description": text[code]} for code in codes}


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 naming each bad field; the offending input is not echoed back (it may be NaN,
    which JSON cannot carry, or someone's health data)."""
    assert isinstance(exc, RequestValidationError)
    items = [
        ErrorItem(
            loc=list(e.get("loc", ())), msg=e.get("msg", ""), type=e.get("type", "")
        ).model_dump()
        for e in exc.errors()
    ]
    return JSONResponse(status_code=422, content={"detail": items})


async def _unstorable_text(request: Request, exc: Exception) -> JSONResponse:
    """PostgreSQL cannot store a NUL character in text: say so instead of failing with 500."""
    return JSONResponse(
        status_code=422,
        content={
            "detail": [
                {
                    "loc": ["body"],
                    "msg": "text must not contain NUL characters",
                    "type": "value_error",
                }
            ]
        },
    )


# The database cannot be reached or cannot take work right now: a restart or failover
# (connections refused or cut, "the database system is starting up"), a disk full. The
# request did nothing that needs undoing (a transaction in flight was rolled back), so the
# caller may retry: 503 with Retry-After naming the cause, never a 500. asyncpg raises its
# InternalClientError when the server cuts a connection during the pool's reset of it (found
# by tests/e2e/test_failover.py), or when no server of a multi-host URL takes writes. A
# standby not promoted yet refuses writes; a connection closed under the request is an
# InterfaceError. The pool's next connection finds the new primary (a URL listing every
# server, target_session_attrs=read-write). A connection not made within
# storage.pools.CONNECT_TIMEOUT_S, or a query past its command timeout, is a TimeoutError.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (
    ConnectionError,
    TimeoutError,
    asyncpg.InternalClientError,
    asyncpg.InterfaceError,
    asyncpg.PostgresConnectionError,
    asyncpg.OperatorInterventionError,
    asyncpg.InsufficientResourcesError,
    asyncpg.ReadOnlySQLTransactionError,
)
DATABASE_RETRY_AFTER_S = 5
DISK_FULL_DETAIL = "the database server is out of disk space; retry later"
DATABASE_DOWN_DETAIL = "the database is temporarily unavailable; retry later"


def database_unavailable_detail(exc: BaseException) -> str:
    """What a client is told when the database cannot take its request."""
    return DISK_FULL_DETAIL if isinstance(exc, asyncpg.DiskFullError) else DATABASE_DOWN_DETAIL


async def _database_unavailable(request: Request, exc: Exception) -> JSONResponse:
    if isinstance(exc, ValueError):  # asyncpg's client-side DataError / configuration error
        log.error("database call refused by the client library: %s", type(exc).__name__)
        return JSONResponse(status_code=500, content={"detail": "internal error"})
    log.warning("database unavailable: %s", type(exc).__name__)
    return JSONResponse(
        status_code=503,
        content={"detail": database_unavailable_detail(exc)},
        headers={"Retry-After": str(DATABASE_RETRY_AFTER_S)},
    )


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
    for unavailable in DATABASE_UNAVAILABLE:
        app.add_exception_handler(unavailable, _database_unavailable)
    app.add_exception_handler(asyncpg.CharacterNotInRepertoireError, _unstorable_text)
    app.add_exception_handler(asyncpg.UntranslatableCharacterError, _unstorable_text)
