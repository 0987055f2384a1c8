"""Uploads arriving together have their grants checked in one statement
(``storage.batches``, ``storage.access.device_grants``), each with the answer it would get
alone: over one real PostgreSQL, every caller and device of a small world is checked both
ways and the outcomes compared; a revoked or disabled caller is refused on the next upload."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from fastapi import HTTPException

from api.routes.upload_tokens import authorise_upload
from api.tokens import KeyStore
from storage import access, accounts, devices, profiles
from storage.batches import Batcher, open_batch_pool
from storage.pools import open_pool
from tests.helpers import insert_share

MANAGE_REFUSED = "your access to this device does not include the 'manage' scope"
Grants = Batcher[tuple[uuid.UUID, uuid.UUID], access.DeviceGrant | None]


class World:
    """A manager with two devices, followers with `manage`, with `readings` only, a revoked
    `manage` share, a stranger, and a disabled manager with a device of their own."""

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


@pytest.fixture
async def world(database_url: str) -> AsyncIterator[tuple[World, Grants]]:
    pool = await open_pool(database_url)
    batch_pool = await open_batch_pool(database_url)
    keys = KeyStore(pool, "http://vigil.test", 900)
    await keys.load()
    world = World(pool, keys)
    await world.build()
    yield world, Batcher(batch_pool, access.device_grants)
    await batch_pool.close()
    await pool.close()


async def outcome(world: World, caller: str, device: str, grants: Grants) -> object:
    """The device's id, or the refusal's status and message."""
    token, device_id = world.tokens[caller], world.devices[device]
    try:
        return (await authorise_upload(world.pool, world.keys, token, device_id, grants)).id
    except HTTPException as refused:
        return refused.status_code, refused.detail


async def test_uploads_arriving_together_get_their_own_answers_from_one_statement(
    world: tuple[World, Grants],
) -> None:
    w, grants = world
    asks = list(itertools.product(w.tokens, w.devices)) * 3
    # Each ask awaited before the next: a statement of its own.
    alone = [await outcome(w, caller, device, grants) for caller, device in asks]
    before = grants.statements
    together = await asyncio.gather(*(outcome(w, c, d, grants) for c, d in asks))
    assert together == alone
    assert grants.statements - before < len(asks) / 10, grants.statements - before
    allowed = {(c, d) for (c, d), o in zip(asks, alone, strict=True) if isinstance(o, uuid.UUID)}
    assert allowed == {(c, d) for c in ("manager", "carer") for d in ("first", "second")}
    refused = {(c, d): o for (c, d), o in zip(asks, alone, strict=True) if isinstance(o, tuple)}
    assert refused[("reader", "first")] == (403, MANAGE_REFUSED)
    assert refused[("disabled", "disabled's")] == (404, "device not found")
    assert {o for o in refused.values()} == {
        (403, MANAGE_REFUSED),
        (404, "device not found"),
    }


async def test_a_revoked_share_is_refused_on_the_next_upload(world: tuple[World, Grants]) -> None:
    w, grants = world
    assert await outcome(w, "carer", "first", grants) == w.devices["first"]
    await w.revoke("carer")
    assert await outcome(w, "carer", "first", grants) == (404, "device not found")


async def test_a_failed_statement_fails_each_upload_waiting_on_it(
    world: tuple[World, Grants], database_url: str
) -> None:
    w, _ = world
    pool = await open_batch_pool(database_url)
    grants: Grants = Batcher(pool, access.device_grants)
    await pool.close()
    failed = await asyncio.gather(
        *(outcome(w, "manager", "first", grants) for _ in range(5)), return_exceptions=True
    )
    assert all(isinstance(f, asyncpg.InterfaceError) for f in failed), failed
