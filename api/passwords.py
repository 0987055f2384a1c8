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

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from api.config import PRODUCTION_PASSWORD_HASHING, PasswordHashing, RateLimits

T = TypeVar("T")
PROFILES: dict[PasswordHashing, Parameters] = {
    "rfc9106-low-memory": profiles.RFC_9106_LOW_MEMORY,  # the library's own default
    "cheapest": profiles.CHEAPEST,  # test suites only (VIGIL_ENV=prod refuses it)
}


class _Hashing:
    """The hasher of this process's profile and a hash of it to verify against when the email
    is unknown, so that both paths cost the same time."""

    def __init__(self, profile: PasswordHashing) -> None:
        self.profile = profile
        self.hasher = PasswordHasher.from_parameters(PROFILES[profile])
        self.dummy_hash = self.hasher.hash("vigil-timing-equaliser")


_hashing = _Hashing(PRODUCTION_PASSWORD_HASHING)


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


def configure(threads: int, profile: PasswordHashing | None = None) -> None:
    """Size this process's hashing pool and choose its parameters (at app start)."""
    global pool, _hashing
    if threads != pool.threads:
        pool = HashingPool(threads)
    if profile is not None and profile != _hashing.profile:
        _hashing = _Hashing(profile)


async def hash_password(password: str) -> str:
    hasher = _hashing.hasher
    return await pool.run(lambda: hasher.hash(password))


def needs_rehash(password_hash: str) -> bool:
    """Was this hash made with other parameters than today's (a cheaper argon2 of an older
    release)? Then it is replaced on the next successful login, while the password is known."""
    try:
        return _hashing.hasher.check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


async def verify_password(password_hash: str | None, password: str) -> bool:
    hashing = _hashing

    def check() -> bool:
        try:
            verified = hashing.hasher.verify(password_hash or hashing.dummy_hash, password)
            return verified and bool(password_hash)
        except (VerificationError, InvalidHashError):
            return False

    return await pool.run(check)
