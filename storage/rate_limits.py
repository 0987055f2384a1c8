"""Fixed-window request counters, kept in PostgreSQL so every API replica counts together.

One row per key: a hit either starts a new window (the old one expired) or adds to the
current one, in one atomic upsert (the row lock serialises concurrent hits). The time left
is at most the window: a hit whose transaction started before the one that opened the
window (``now()`` is the transaction's start) waited for its row lock and would otherwise
count a few milliseconds more than the window (a Retry-After of 60.003 s for a 60 s window,
seen once in CI)."""

from __future__ import annotations

import random

import asyncpg

_HIT = """
INSERT INTO rate_counters AS c (key, count, expires_at)
VALUES ($1, 1, now() + make_interval(secs => $2))
ON CONFLICT (key) DO UPDATE SET
    count = CASE WHEN c.expires_at <= now() THEN 1 ELSE c.count + 1 END,
    expires_at = CASE WHEN c.expires_at <= now() THEN EXCLUDED.expires_at ELSE c.expires_at END
RETURNING count, least(extract(epoch FROM expires_at - now())::float8, $2) AS left_s
"""
SWEEP_CHANCE = 0.01  # share of hits that also delete expired counters


async def hit(pool: asyncpg.Pool, key: str, window_s: int) -> tuple[int, float]:
    """Count one hit of ``key``: the hits in its current window (this one included) and the
    seconds until that window ends."""
    row = await pool.fetchrow(_HIT, key, window_s)
    if random.random() < SWEEP_CHANCE:
        await pool.execute("DELETE FROM rate_counters WHERE expires_at < now()")
    return row["count"], row["left_s"]
