"""A database lost under a request (primary killed, standby being promoted, restart) is a
503 with Retry-After, never a 500: the handlers of api.errors, on a real HTTP server path
(FastAPI's exception middleware), for each kind of failure asyncpg and the OS raise."""

from __future__ import annotations

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from api.errors import install_error_handlers

FAILURES = {
    "connection lost": asyncpg.ConnectionDoesNotExistError("connection was closed"),
    "admin shutdown": asyncpg.AdminShutdownError("terminating connection"),
    "starting up": asyncpg.CannotConnectNowError("the database system is starting up"),
    "read only": asyncpg.ReadOnlySQLTransactionError("read-only transaction"),
    "pool closed": asyncpg.InterfaceError("pool is closing"),
    "no writable host": asyncpg.exceptions.TargetServerAttributeNotMatched("no primary"),
    "refused": ConnectionRefusedError(111, "Connection refused"),
    "broken mid-query": asyncpg.exceptions.InternalClientError(
        "cannot switch to state 15; another operation (2) is in progress"
    ),
}


def app_failing_with(exc: Exception) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/fails")
    async def fails() -> None:
        raise exc

    @app.get("/bug")
    async def bug() -> None:
        raise asyncpg.UndefinedColumnError("column x does not exist")

    return app


@pytest.mark.parametrize("name", list(FAILURES))
def test_the_database_unavailable_is_a_503_with_retry_after(name: str) -> None:
    client = TestClient(app_failing_with(FAILURES[name]), raise_server_exceptions=False)
    r = client.get("/fails")
    assert r.status_code == 503, r.text
    assert r.headers["retry-after"] == "5"
    assert "retry later" in r.json()["detail"]
    assert "closed" not in r.text and "refused" not in r.text  # nothing internal told
    # a bug in our SQL is not an outage: it stays a 500 (and is logged as one)
    assert client.get("/bug").status_code == 500


def test_a_query_the_client_library_refuses_is_a_bug_not_an_outage() -> None:
    """asyncpg's client-side DataError (bad query input) is an InterfaceError too: a 500."""
    refused = asyncpg.exceptions.DataError("invalid input for query argument $1")
    client = TestClient(app_failing_with(refused), raise_server_exceptions=False)
    r = client.get("/fails")
    assert r.status_code == 500
    assert "retry-after" not in r.headers
