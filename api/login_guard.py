"""Login rate limiting: temporary lockout per account and per client address.

After ``login_max_failures_per_account`` wrong passwords for one email (existing or not,
so the answer never reveals which) within ``login_window_s``, or
``login_max_failures_per_address`` from one client address, that key is locked for
``login_lockout_s``: every password login through it answers 429 with Retry-After, even
with the right password. State lives in PostgreSQL, shared by all API replicas."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import asyncpg
from fastapi import HTTPException, Request

from api.config import ApiConfig
from api.errors import error
from storage import login_attempts

LOCKED_MESSAGE = "too many failed logins; try again later"


def account_key(email: str) -> str:
    return f"account:{email.strip().lower()}"


def address_key(address: str) -> str:
    return f"address:{address}"


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _locked(until: datetime) -> HTTPException:
    retry = max(1, math.ceil((until - datetime.now(UTC)).total_seconds()))
    return error(429, LOCKED_MESSAGE, {"Retry-After": str(retry)})


async def check(pool: asyncpg.Pool, email: str, address: str) -> None:
    """429 while the account or the address is locked."""
    until = await login_attempts.locked_until(pool, [account_key(email), address_key(address)])
    if until is not None:
        raise _locked(until)


async def failed(pool: asyncpg.Pool, config: ApiConfig, email: str, address: str) -> None:
    """Count a wrong password; 429 if this failure locks the account or the address."""
    window, lockout = config.login_window_s, config.login_lockout_s
    ends = [
        await login_attempts.record_failure(
            pool, account_key(email), config.login_max_failures_per_account, window, lockout
        ),
        await login_attempts.record_failure(
            pool, address_key(address), config.login_max_failures_per_address, window, lockout
        ),
    ]
    locked = [t for t in ends if t is not None]
    if locked:
        raise _locked(max(locked))


async def succeeded(pool: asyncpg.Pool, email: str) -> None:
    await login_attempts.clear(pool, account_key(email))
