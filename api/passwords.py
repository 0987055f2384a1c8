"""Password hashing with argon2id, off the event loop and bounded.

Each hash costs tens of milliseconds of CPU and 64 MiB; in the shared thread pool a burst of
logins or sign-ups ran dozens at once and slowed every other request. They run in a pool of
their own (``RateLimits.password_hashing_threads`` per replica); the rest wait their turn
there, not on the event loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from api.config import RateLimits

T = TypeVar("T")
_hasher = PasswordHasher()  # argon2id with the library's (RFC 9106 low-memory) defaults
# Verified against when the email is unknown, so both paths cost the same time.
_DUMMY_HASH = _hasher.hash("vigil-timing-equaliser")


class HashingPool:
    """The bounded pool, with the most hashes it has run at once (for tests and metrics)."""

    def __init__(self, threads: int) -> None:
        self.threads = threads
        self._executor = ThreadPoolExecutor(threads, thread_name_prefix="argon2")
        self._count = threading.Lock()
        self.running = 0
        self.peak = 0

    def _counted(self, fn: Callable[[], T]) -> T:
        with self._count:
            self.running += 1
            self.peak = max(self.peak, self.running)
        try:
            return fn()
        finally:
            with self._count:
                self.running -= 1

    async def run(self, fn: Callable[[], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self._counted, fn)


pool = HashingPool(RateLimits().password_hashing_threads)


def configure(threads: int) -> None:
    """Size this process's hashing pool (at app start)."""
    global pool
    if threads != pool.threads:
        pool = HashingPool(threads)


async def hash_password(password: str) -> str:
    return await pool.run(lambda: _hasher.hash(password))


def needs_rehash(password_hash: str) -> bool:
    """Was this hash made with other parameters than today's (a cheaper argon2 of an older
    release)? Then it is replaced on the next successful login, while the password is known."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await pool.run(check)
