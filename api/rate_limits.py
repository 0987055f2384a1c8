"""Rate limits on expensive work: 429 with Retry-After instead of queuing for minutes.

Sign-up, login, password reset, export, reports (JSON and PDF) and report-link opening cost
an argon2 hash, a large read or a PDF render each. Every limit is counted per client
address, per user, per email recipient or per report link in PostgreSQL
(``storage.rate_limits``), so several replicas share one count; the limits are settings
(``ApiConfig.rate_limits``). Two bounds per replica keep the event loop free: argon2 runs in
a pool of ``password_hashing_threads`` (``api.passwords``), and at most ``pdf_waiting_max``
PDFs wait for the renderer (one at a time: matplotlib's settings are process-global);
one more is a 429 at once.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
from fastapi import Depends, HTTPException, Request

from api.config import RateLimits
from api.deps import CallerId, Config, Pool
from api.errors import ErrorBody, error
from api.login_guard import client_address
from storage import rate_limits

TOO_MANY: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "Too many requests; see `Retry-After`"}
}


def _too_many(what: str, retry_s: float) -> HTTPException:
    retry = str(max(1, math.ceil(retry_s)))
    return error(429, f"too many {what}; try again later", {"Retry-After": retry})


async def allowed(pool: asyncpg.Pool, limits: RateLimits, name: str, subject: str) -> float:
    """Count a hit of limit ``name`` for ``subject``: 0 while within the limit, else the
    seconds until it allows again."""
    rate = getattr(limits, name)
    count, left_s = await rate_limits.hit(pool, f"{name}:{subject}", rate.window_s)
    return 0.0 if count <= rate.count else max(left_s, 1.0)


async def enforce(
    pool: asyncpg.Pool, limits: RateLimits, name: str, subject: str, what: str = "requests"
) -> None:
    """429 with Retry-After when ``subject`` went past limit ``name``."""
    retry_s = await allowed(pool, limits, name, subject)
    if retry_s:
        raise _too_many(what, retry_s)


def by_address(name: str, what: str = "requests") -> Any:
    """A route dependency: limit ``name`` per client address."""

    async def limit(request: Request, pool: Pool, config: Config) -> None:
        await enforce(pool, config.rate_limits, name, client_address(request), what)

    return Depends(limit)


def by_user(name: str, what: str = "requests") -> Any:
    """A route dependency: limit ``name`` per authenticated user."""

    async def limit(user_id: CallerId, pool: Pool, config: Config) -> None:
        await enforce(pool, config.rate_limits, name, str(user_id), what)

    return Depends(limit)


def secret_subject(secret: str) -> str:
    """A counter subject for a secret (a report link's token) that does not store it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:32]


async def email_allowed(pool: asyncpg.Pool, limits: RateLimits, recipient: str) -> bool:
    """Whether one more email may go to ``recipient`` (sign-up notices, resets) now."""
    return not await allowed(pool, limits, "emails_per_recipient", recipient.strip().lower())


class RenderQueue:
    """One render at a time, and at most ``waiting_max`` waiting; one more is a 429."""

    def __init__(self, waiting_max: int) -> None:
        self.waiting_max = waiting_max
        self._lock = asyncio.Lock()
        self._queued = 0  # rendering or waiting

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._queued > self.waiting_max:
            raise _too_many("reports rendering now", 5)
        self._queued += 1
        try:
            async with self._lock:
                yield
        finally:
            self._queued -= 1


_queues: dict[int, RenderQueue] = {}


async def render_pdf(waiting_max: int, render: Callable[[], Awaitable[bytes]]) -> bytes:
    """Run ``render`` through this replica's PDF queue."""
    queue = _queues.setdefault(waiting_max, RenderQueue(waiting_max))
    async with queue.slot():
        return await render()
