"""Recorded shard layouts (migration 0100): the active one every router and shard follows,
and the one a shard-count change is moving to."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import asyncpg
import psycopg


@dataclass(frozen=True, slots=True)
class Layout:
    epoch: int
    shard_count: int
    assignment: list[int]  # virtual shard -> shard


_SELECT = "SELECT epoch, shard_count, assignment FROM shard_layouts WHERE state = %s"


def _layout(row: tuple | None) -> Layout | None:
    return None if row is None else Layout(row[0], row[1], list(row[2]))


async def current_layouts(conn: psycopg.AsyncConnection) -> tuple[Layout | None, Layout | None]:
    """(active, moving): either may be None."""
    active = await (await conn.execute(_SELECT, ("active",))).fetchone()
    moving = await (await conn.execute(_SELECT, ("moving",))).fetchone()
    return _layout(active), _layout(moving)


async def active_layout(pool: asyncpg.Pool) -> Layout | None:
    row = await pool.fetchrow(_SELECT.replace("%s", "$1"), "active")
    return None if row is None else Layout(row[0], row[1], list(row[2]))


def active_layout_sync(conn: psycopg.Connection) -> Layout | None:
    return _layout(conn.execute(_SELECT, ("active",)).fetchone())


def record_moving(conn: psycopg.Connection, shard_count: int, assignment: list[int]) -> int:
    """Record the layout being moved to (abandoning an unfinished earlier move); its epoch."""
    with conn.transaction():
        conn.execute("UPDATE shard_layouts SET state = 'abandoned' WHERE state = 'moving'")
        row = conn.execute(
            "INSERT INTO shard_layouts (epoch, shard_count, assignment, state)"
            " SELECT coalesce(max(epoch), 0) + 1, %s, %s, 'moving' FROM shard_layouts"
            " RETURNING epoch",
            (shard_count, assignment),
        ).fetchone()
    assert row is not None
    return row[0]


def activate(conn: psycopg.Connection, epoch: int) -> None:
    """The moving layout ``epoch`` becomes the active one."""
    with conn.transaction():
        conn.execute("UPDATE shard_layouts SET state = 'retired' WHERE state = 'active'")
        done = conn.execute(
            "UPDATE shard_layouts SET state = 'active', activated_at = now()"
            " WHERE epoch = %s AND state = 'moving'",
            (epoch,),
        ).rowcount
        if done != 1:
            raise RuntimeError(f"layout {epoch} is no longer the one being moved to")


# One change of shard placement at a time (``vigil shards scale``, ``vigil shards
# rebalance`` and the automatic balancer, ``actors.balancer``): a session advisory lock.
PLACEMENT_LOCK = 0x5669_6769_6C53  # "VigilS"


@contextmanager
def placement_lock(conn: psycopg.Connection, wait: bool = True) -> Iterator[bool]:
    """Hold the placement lock while inside; yields False (not holding it) when ``wait`` is
    False and another process holds it."""
    if wait:
        conn.execute("SELECT pg_advisory_lock(%s)", (PLACEMENT_LOCK,))
        held = True
    else:
        row = conn.execute("SELECT pg_try_advisory_lock(%s)", (PLACEMENT_LOCK,)).fetchone()
        held = bool(row and row[0])
    try:
        yield held
    finally:
        if held:
            conn.execute("SELECT pg_advisory_unlock(%s)", (PLACEMENT_LOCK,))


def moving_layout_sync(conn: psycopg.Connection) -> Layout | None:
    return _layout(conn.execute(_SELECT, ("moving",)).fetchone())
