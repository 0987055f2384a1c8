"""The login guard against the real database: per-address lockout (the HTTP tests cannot
lock 127.0.0.1 without stopping every other test), windows and clearing."""

from __future__ import annotations

import uuid

import pytest
from fastapi import HTTPException

from api import login_guard
from api.config import ApiConfig
from storage import login_attempts
from storage.pools import open_pool


@pytest.fixture
async def pool(database_url):
    pool = await open_pool(database_url)
    yield pool
    await pool.close()


async def test_many_accounts_from_one_address_lock_the_address(pool, database_url) -> None:
    config = ApiConfig(
        database_url=database_url,
        login_max_failures_per_account=20,
        login_max_failures_per_address=3,
        login_lockout_s=600,
    )
    address = f"203.0.113.{uuid.uuid4().int % 250}-{uuid.uuid4().hex[:6]}"
    emails = [f"a{i}-{uuid.uuid4().hex[:6]}@example.com" for i in range(3)]
    await login_guard.failed(pool, config, emails[0], address)
    await login_guard.failed(pool, config, emails[1], address)
    with pytest.raises(HTTPException) as locked:
        await login_guard.failed(pool, config, emails[2], address)
    assert locked.value.status_code == 429
    assert 590 < int(locked.value.headers["Retry-After"]) <= 600
    with pytest.raises(HTTPException):
        await login_guard.check(pool, "someone-else@example.com", address)
    await login_guard.check(pool, emails[0], "198.51.100.1")  # that email is not locked


async def test_failures_outside_the_window_do_not_count(pool) -> None:
    key = f"account:{uuid.uuid4().hex}@example.com"
    for _ in range(2):
        assert await login_attempts.record_failure(pool, key, 3, 900, 900) is None
    await pool.execute(
        "UPDATE login_failures SET at = now() - interval '1 hour' WHERE key = $1", key
    )
    assert await login_attempts.record_failure(pool, key, 3, 900, 900) is None
    assert await login_attempts.record_failure(pool, key, 3, 900, 900) is None
    assert await login_attempts.record_failure(pool, key, 3, 900, 900) is not None
    assert await login_attempts.locked_until(pool, [key]) is not None
    await login_attempts.clear(pool, key)
    assert await login_attempts.locked_until(pool, [key]) is None
