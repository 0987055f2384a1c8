"""Uploads arriving together have their credentials checked in one statement per kind
(``storage.batches``; ``storage.access.device_grants`` for users' access tokens,
``storage.upload_tokens.devices_for_tokens`` for devices' upload tokens), each with the
answer it would get alone: over one real PostgreSQL, every credential and device of a small
world is checked both ways and the outcomes compared; a revoked share, a rotated upload token
or a disabled manager is refused on the next upload."""

from __future__ import annotations

import asyncio
import itertools
import secrets
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import HTTPException

from api.routes.upload_tokens import UploadChecks, authorise_upload
from api.tokens import UPLOAD_TOKEN_PREFIX, KeyStore, hash_secret
from storage import accounts, devices, profiles, upload_tokens
from storage.batches import open_batch_pool
from storage.pools import open_pool
from tests.helpers import insert_share

MANAGE_REFUSED = "your access to this device does not include the 'manage' scope"


class World:
    """A manager with two devices, followers with `manage`, with `readings` only, a revoked
    `manage` share, a stranger, and a disabled manager with a device of their own; the
    devices' upload tokens (and the first device's previous one, rotated), and one that
    never was."""

    def __init__(self, pool: asyncpg.Pool, keys: KeyStore) -> None:
        self.pool, self.keys = pool, keys
        self.tokens: dict[str, str] = {}
        self.devices: dict[str, uuid.UUID] = {}
        self.shares: dict[str, uuid.UUID] = {}

    async def user(self, name: str) -> uuid.UUID:
        tag = uuid.uuid4().hex[:10]
        row = await accounts.create_user(self.pool, f"{tag}@example.org", "x", name)
        self.tokens[name] = self.keys.issue(row["id"])[0]
        return row["id"]

    async def device(self, name: str, manager: uuid.UUID) -> None:
        profile = await profiles.self_profile_id(self.pool, manager)
        row = await devices.create_device(
            self.pool, profile, "glucose", uuid.uuid4().hex[:12], None, 300
        )
        self.devices[name] = row["id"]
        await self.upload_token(name)

    async def upload_token(self, device: str) -> None:
        token = UPLOAD_TOKEN_PREFIX + secrets.token_urlsafe(32)
        await upload_tokens.replace_token(self.pool, self.devices[device], hash_secret(token))
        self.tokens[f"{device}'s token"] = token

    async def share(self, manager: uuid.UUID, follower: str, scopes: list[str]) -> None:
        profile = await profiles.self_profile_id(self.pool, manager)
        self.shares[follower] = await insert_share(
            self.pool, profile, manager, await self.user(follower), scopes
        )

    async def revoke(self, follower: str) -> None:
        await self.pool.execute(
            "UPDATE shares SET state = 'revoked', ended_at = now() WHERE id = $1",
            self.shares[follower],
        )

    async def build(self) -> None:
        manager = await self.user("manager")
        await self.device("first", manager)
        self.tokens["first's old token"] = self.tokens["first's token"]
        await self.upload_token("first")  # rotated: the old one stops working
        await self.device("second", manager)
        await self.share(manager, "carer", ["manage"])
        await self.share(manager, "reader", ["readings", "alerts"])
        await self.share(manager, "revoked", ["manage"])
        await self.revoke("revoked")
        await self.user("stranger")
        disabled = await self.user("disabled")
        await self.device("disabled's", disabled)
        await self.pool.execute("UPDATE users SET disabled_at = now() WHERE id = $1", disabled)
        self.devices["unknown"] = uuid.uuid4()
        self.tokens["a made-up token"] = UPLOAD_TOKEN_PREFIX + secrets.token_urlsafe(32)


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[World, UploadChecks]]:
    pool = await open_pool(database_url)
    batch_pool = await open_batch_pool(database_url)
    keys = KeyStore(pool, "http://vigil.test", 900)
    await keys.load()
    world = World(pool, keys)
    await world.build()
    yield world, UploadChecks.on(batch_pool)
    await batch_pool.close()
    await pool.close()


async def outcome(world: World, caller: str, device: str, checks: UploadChecks) -> object:
    """The device's id, or the refusal's status and message."""
    token, device_id = world.tokens[caller], world.devices[device]
    try:
        return (await authorise_upload(world.keys, token, device_id, checks)).id
    except HTTPException as refused:
        return refused.status_code, refused.detail


def statements(checks: UploadChecks) -> int:
    return checks.grants.statements + checks.tokens.statements


async def test_uploads_arriving_together_get_their_own_answers_from_one_statement(
    world: tuple[World, UploadChecks],
) -> None:
    w, checks = world
    asks = list(itertools.product(w.tokens, w.devices)) * 3
    # Each ask awaited before the next: a statement of its own.
    alone = [await outcome(w, caller, device, checks) for caller, device in asks]
    assert statements(checks) == len(asks)
    before = (checks.grants.statements, checks.tokens.statements)
    together = await asyncio.gather(*(outcome(w, c, d, checks) for c, d in asks))
    assert together == alone
    sent = (checks.grants.statements - before[0], checks.tokens.statements - before[1])
    assert min(sent) >= 1 and sum(sent) < len(asks) / 10, sent
    allowed = {(c, d) for (c, d), o in zip(asks, alone, strict=True) if isinstance(o, uuid.UUID)}
    assert allowed == {(c, d) for c in ("manager", "carer") for d in ("first", "second")} | {
        ("first's token", "first"),
        ("second's token", "second"),
    }
    refused = {(c, d): o for (c, d), o in zip(asks, alone, strict=True) if isinstance(o, tuple)}
    assert refused[("reader", "first")] == (403, MANAGE_REFUSED)
    assert refused[("disabled", "disabled's")] == (404, "device not found")
    another = (403, "this upload token belongs to another device")
    assert refused[("first's token", "second")] == another
    assert refused[("first's token", "unknown")] == another
    invalid = (401, "invalid upload token")
    for token in ("first's old token", "a made-up token", "disabled's's token"):
        assert {refused[(token, d)] for d in w.devices} == {invalid}, token
    assert {o for o in refused.values()} == {
        (403, MANAGE_REFUSED),
        (404, "device not found"),
        another,
        invalid,
    }


async def test_a_revoked_share_or_rotated_token_is_refused_on_the_next_upload(
    world: tuple[World, UploadChecks],
) -> None:
    w, checks = world
    assert await outcome(w, "carer", "first", checks) == w.devices["first"]
    await w.revoke("carer")
    assert await outcome(w, "carer", "first", checks) == (404, "device not found")
    assert await outcome(w, "second's token", "second", checks) == w.devices["second"]
    previous = w.tokens["second's token"]
    await w.upload_token("second")
    w.tokens["second's old token"] = previous
    assert await outcome(w, "second's old token", "second", checks) == (
        401,
        "invalid upload token",
    )
    assert await outcome(w, "second's token", "second", checks) == w.devices["second"]


async def test_a_failed_statement_fails_each_upload_waiting_on_it(
    world: tuple[World, UploadChecks], database_url: str
) -> None:
    w, _ = world
    pool = await open_batch_pool(database_url)
    checks = UploadChecks.on(pool)
    await pool.close()
    callers = ["manager", "first's token"] * 5
    failed = await asyncio.gather(
        *(outcome(w, c, "first", checks) for c in callers), return_exceptions=True
    )
    assert all(isinstance(f, asyncpg.InterfaceError) for f in failed), failed
