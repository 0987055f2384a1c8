"""A database error reaches the logs as its kind, SQLSTATE and names, never with the row
PostgreSQL quotes in its detail (a reading's value), from either driver."""

from __future__ import annotations

import asyncio
import logging

import asyncpg
import psycopg
import pytest

from storage.errors import log_failure, loggable

VALUE = "112.375"  # stands for a glucose value in the failing row
TABLE = "CREATE TEMP TABLE glucose_check (v double precision CONSTRAINT plausible CHECK (v < 100))"


def psycopg_violation(database_url: str) -> psycopg.Error:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(TABLE)
        with pytest.raises(psycopg.errors.CheckViolation) as raised:
            conn.execute(f"INSERT INTO glucose_check VALUES ({VALUE})")
    return raised.value


def asyncpg_violation(database_url: str) -> asyncpg.PostgresError:
    async def run() -> asyncpg.PostgresError:
        conn = await asyncpg.connect(database_url)
        try:
            await conn.execute(TABLE)
            with pytest.raises(asyncpg.CheckViolationError) as raised:
                await conn.execute(f"INSERT INTO glucose_check VALUES ({VALUE})")
            return raised.value
        finally:
            await conn.close()

    return asyncio.run(run())


@pytest.mark.parametrize("violation", [psycopg_violation, asyncpg_violation])
def test_a_constraint_violation_is_logged_without_the_row(
    violation, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    exc = violation(database_url)
    assert VALUE in str(exc) + str(getattr(exc, "detail", ""))  # what a plain log would show
    log = logging.getLogger("vigil.test.errors")
    with caplog.at_level(logging.ERROR, logger=log.name):
        log_failure(log, "commit of %d batches failed", exc, 3)
    assert VALUE not in caplog.text
    assert "commit of 3 batches failed: CheckViolation" in caplog.text
    assert "SQLSTATE 23514" in caplog.text and "constraint plausible" in caplog.text
    assert caplog.records[0].exc_info is None


def test_other_errors_keep_their_traceback(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("vigil.test.errors")
    try:
        raise KeyError("no such device")
    except KeyError as exc:
        assert loggable(exc) is None
        with caplog.at_level(logging.ERROR, logger=log.name):
            log_failure(log, "ingest failed", exc)
    assert caplog.records[0].exc_info is not None and "Traceback" in caplog.text
