"""What of a database error may be logged: its kind, SQLSTATE and the names of the table,
column and constraint it concerns, never its message or detail. PostgreSQL's detail of a
constraint violation quotes the failing row ("Failing row contains (…, 112.0, …)"): a
reading's value, which must not reach a log. Other exceptions are logged with their
traceback, as usual."""

from __future__ import annotations

import logging

import asyncpg
import psycopg


def loggable(exc: BaseException) -> str | None:
    """The safe description of a database error; None for any other exception."""
    if isinstance(exc, psycopg.Error):
        names = (exc.diag.table_name, exc.diag.column_name, exc.diag.constraint_name)
        return _describe(exc, exc.sqlstate, names)
    if isinstance(exc, asyncpg.PostgresError):
        names = (exc.table_name, exc.column_name, exc.constraint_name)
        return _describe(exc, exc.sqlstate, names)
    return None


def log_failure(log: logging.Logger, message: str, exc: BaseException, *args: object) -> None:
    """``log.error(message, *args)`` with ``exc``: a database error as :func:`loggable`
    describes it, anything else with its traceback."""
    safe = loggable(exc)
    if safe is None:
        log.error(message, *args, exc_info=exc)
    else:
        log.error(message + ": %s", *args, safe)


def _describe(exc: BaseException, sqlstate: str | None, names: tuple[str | None, ...]) -> str:
    labels = ("table", "column", "constraint")
    where = [f"{label} {name}" for label, name in zip(labels, names, strict=True) if name]
    return ", ".join([type(exc).__name__, f"SQLSTATE {sqlstate or '?'}", *where])
