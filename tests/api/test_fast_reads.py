"""The polled reads answered below FastAPI (``api.fast_reads``) answer exactly as the routes
do: the same status, body and headers, the same audit entries, for every case a client can
bring — and the fast lane really answers the common ones. Reads sent together share one
statement (``storage.batches``) and each still gets its own grant check and audit entry.

Two apps over one real PostgreSQL: one as deployed, one with ``fast_lanes=False``."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from api.app import create_app
from api.config import ApiConfig
from api.fast_reads import FastReads
from api.tokens import KeyStore
from storage import accounts, body_sites, devices, profiles
from storage.batches import Batcher, open_batch_pool
from storage.pools import open_pool
from storage.readings import audited_reads
from tests.helpers import insert_share

T0 = datetime(2026, 11, 1, tzinfo=UTC)


class World:
    """Two users, a glucose and a temperature device with readings, an empty device, and a
    follower for each kind of share."""

    database_url: str

    def __init__(self, pool: asyncpg.Pool, keys: KeyStore) -> None:
        self.pool, self.keys = pool, keys

    async def user(self) -> tuple[uuid.UUID, str]:
        tag = uuid.uuid4().hex[:10]
        row = await accounts.create_user(self.pool, f"{tag}@example.org", "x", tag)
        return row["id"], self.keys.issue(row["id"])[0]

    async def build(self) -> None:
        self.manager, self.manager_token = await self.user()
        profile = await profiles.self_profile_id(self.pool, self.manager)
        self.glucose = (await self.device(profile, "glucose"))["id"]
        self.temperature = (await self.device(profile, "temperature"))["id"]
        self.empty = (await self.device(profile, "glucose"))["id"]
        rows = [
            (
                self.glucose,
                T0 + timedelta(minutes=5 * i),
                100.0 + i,
                -1.25 if i % 2 else None,
                "FortyFiveDown" if i % 2 else None,
            )
            for i in range(30)
        ] + [
            (self.temperature, T0 + timedelta(minutes=i), 36.5 + i / 100, None, None)
            for i in range(10)
        ]
        await self.pool.execute(
            "SELECT vigil_ensure_readings_partitions($1, $2)", T0, T0 + timedelta(days=1)
        )
        await self.pool.executemany(
            "INSERT INTO readings (device_id, ts, value, rate_per_min, direction)"
            " VALUES ($1, $2, $3, $4, $5)",
            rows,
        )
        await body_sites.record(self.pool, self.temperature, T0 + timedelta(minutes=3), "axilla")
        self.reader, self.reader_token = await self.user()
        self.alerts_only, self.alerts_only_token = await self.user()
        self.stranger, self.stranger_token = await self.user()
        self.reader_share = await self.share(profile, self.reader, ["readings"])
        await self.share(profile, self.alerts_only, ["alerts"])

    async def device(self, profile: uuid.UUID, kind: str) -> asyncpg.Record:
        serial = uuid.uuid4().hex[:12]
        return await devices.create_device(self.pool, profile, kind, serial, None, 300)

    async def share(self, profile: uuid.UUID, follower: uuid.UUID, scopes: list[str]) -> uuid.UUID:
        return await insert_share(self.pool, profile, self.manager, follower, scopes)


@pytest.fixture
async def setup(database_url: str) -> AsyncIterator[tuple[World, dict[str, FastAPI]]]:
    pool = await open_pool(database_url)
    keys = KeyStore(pool, "http://vigil.test", 900)
    await keys.load()
    config = ApiConfig(database_url=database_url)
    apps = {
        "fast": create_app(config, connect=False),
        "routed": create_app(config, connect=False, fast_lanes=False),
    }
    read_pool = await open_batch_pool(database_url)
    for app in apps.values():
        app.state.pool, app.state.keys, app.state.config = pool, keys, config
        app.state.reads = Batcher(read_pool, audited_reads)
    world = World(pool, keys)
    world.database_url = database_url
    await world.build()
    yield world, apps
    await read_pool.close()
    await pool.close()


def fast_lane(app: FastAPI) -> FastReads:
    layer: Any = app.middleware_stack
    while not isinstance(layer, FastReads):
        layer = getattr(layer, "app", None)
        assert layer is not None, "no FastReads in the app's middleware"
    return layer


async def audit_count(pool: asyncpg.Pool) -> int:
    return await pool.fetchval("SELECT count(*) FROM audit_log")


async def ask(app: FastAPI, path: str, token: str | None, **headers: str) -> httpx.Response:
    if token is not None:
        headers["authorization"] = f"Bearer {token}"
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://vigil.test") as client:
        return await client.get(path, headers={"user-agent": "test-agent/1", **headers})


async def test_every_case_answers_as_the_route_does_and_audits_the_same(setup) -> None:
    world, apps = setup
    w = world
    g, t, e = w.glucose, w.temperature, w.empty
    start, end = (T0 + timedelta(minutes=20)).isoformat(), (T0 + timedelta(hours=1)).isoformat()
    cases: list[tuple[str, str | None, bool]] = [  # path, token, answered by the fast lane
        (f"/v1/devices/{g}/latest", w.manager_token, True),
        (f"/v1/devices/{g}/readings", w.manager_token, True),
        (f"/v1/devices/{g}/readings?limit=5", w.reader_token, True),
        (
            f"/v1/devices/{g}/readings?start={start}&end={end}&limit=4".replace("+", "%2B"),
            w.manager_token,
            True,
        ),
        (f"/v1/devices/{str(g).upper()}/latest", w.reader_token, True),
        (f"/v1/devices/{t}/latest", w.manager_token, True),
        (f"/v1/devices/{t}/readings", w.reader_token, True),
        (f"/v1/devices/{e}/latest", w.manager_token, True),  # 404 no readings yet, audited
        (f"/v1/devices/{e}/readings", w.manager_token, True),  # an empty list
        (f"/v1/devices/{g}/latest", w.alerts_only_token, True),  # 403, not audited
        (f"/v1/devices/{g}/readings", w.stranger_token, True),  # 404, not audited
        (f"/v1/devices/{uuid.uuid4()}/latest", w.manager_token, True),  # 404
        # handed on to FastAPI: it answers these itself
        (f"/v1/devices/{g}/latest", None, False),  # 401
        (f"/v1/devices/{g}/latest", "not-a-token", False),  # 401
        (f"/v1/devices/{g}/readings?limit=0", w.manager_token, False),  # 422
        (f"/v1/devices/{g}/readings?limit=ten", w.manager_token, False),  # 422
        (f"/v1/devices/{g}/readings?start=yesterday", w.manager_token, False),  # 422
        (
            f"/v1/devices/{g}/readings?start={end}&end={start}".replace("+", "%2B"),
            w.manager_token,
            False,
        ),
        (f"/v1/devices/{g}/readings?start=2026-11-01T00:00:00", w.manager_token, False),  # naive
        (f"/v1/devices/{g}/readings?limit=3&limit=4", w.manager_token, False),
        (f"/v1/devices/{g}/readings?limit=", w.manager_token, False),
        (f"/v1/devices/{g}/readings?unknown=1", w.manager_token, False),
        (f"/v1/devices/{g}/latest?limit=1", w.manager_token, False),
        (f"/v1/devices/{g.hex}/latest", w.manager_token, False),  # a UUID without dashes
        ("/v1/devices/not-a-uuid/latest", w.manager_token, False),  # 422
    ]
    lane = None
    for path, token, fast in cases:
        answers, audited = {}, {}
        for name, app in apps.items():
            before = await audit_count(w.pool)
            answers[name] = await ask(app, path, token)
            audited[name] = await audit_count(w.pool) - before
        lane = lane or fast_lane(apps["fast"])
        answered_before = lane.answered
        again = await ask(apps["fast"], path, token)
        assert (lane.answered - answered_before == 1) is fast, path
        a, b = answers["fast"], answers["routed"]
        assert (a.status_code, a.content) == (b.status_code, b.content), path
        assert again.status_code == a.status_code, path
        for header in (
            "content-type",
            "content-length",
            "www-authenticate",
            "cache-control",
            "x-content-type-options",
            "content-security-policy",
            "x-request-id",
        ):
            assert (header in a.headers) == (header in b.headers), (path, header)
            if header != "x-request-id":
                assert a.headers.get(header) == b.headers.get(header), (path, header)
        assert audited["fast"] == audited["routed"], path
        assert audited["fast"] == (
            1 if a.status_code in (200,) or "no readings" in a.text else 0
        ), path
    # what the answers said, checked once against the data itself
    latest = (await ask(apps["fast"], f"/v1/devices/{g}/latest", w.reader_token)).json()
    assert latest["value"] == 129.0 and latest["unit"] == "mg/dL"
    assert latest["trend"] == {"rate_per_min": -1.25, "direction": "FortyFiveDown"}
    window = (await ask(apps["fast"], cases[3][0], w.manager_token)).json()
    assert [r["value"] for r in window] == [104.0, 105.0, 106.0, 107.0]
    sites = (await ask(apps["fast"], f"/v1/devices/{t}/readings", w.manager_token)).json()
    assert [r["body_site"] for r in sites] == [None] * 3 + ["axilla"] * 7
    entry = await w.pool.fetchrow(
        "SELECT * FROM audit_log WHERE actor_id = $1 ORDER BY id DESC LIMIT 1", w.reader
    )
    assert entry["action"] == "GET /v1/devices/{device_id}/latest"
    assert entry["client_addr"] == "198.51.100.7" and entry["user_agent"] == "test-agent/1"
    assert entry["device_id"] == g


async def test_a_revoked_follower_is_refused_on_the_next_read(setup) -> None:
    world, apps = setup
    path = f"/v1/devices/{world.glucose}/latest"
    assert (await ask(apps["fast"], path, world.reader_token)).status_code == 200
    await world.pool.execute(
        "UPDATE shares SET state = 'revoked', ended_at = now() WHERE id = $1", world.reader_share
    )
    refused = await ask(apps["fast"], path, world.reader_token)
    assert refused.status_code == 404, refused.text


async def test_reads_arriving_together_share_a_statement_each_with_its_grant_and_audit(
    setup,
) -> None:
    world, apps = setup
    reads: Batcher = apps["fast"].state.reads
    statements_before = reads.statements
    before = await audit_count(world.pool)
    tokens = [
        world.manager_token,
        world.reader_token,
        world.alerts_only_token,
        world.stranger_token,
    ]
    paths = [(f"/v1/devices/{world.glucose}/latest", tokens[i % 4]) for i in range(40)] + [
        (f"/v1/devices/{world.glucose}/readings?limit={i + 1}", tokens[i % 4]) for i in range(20)
    ]
    answers = await asyncio.gather(*(ask(apps["fast"], p, tok) for p, tok in paths))
    statements = reads.statements - statements_before
    assert statements < len(paths) / 4, statements  # sent together, not one by one
    expected = {0: 200, 1: 200, 2: 403, 3: 404}
    for i, ((path, _), answer) in enumerate(zip(paths, answers, strict=True)):
        assert answer.status_code == expected[i % 4], (path, answer.text)
        if "limit=" in path and answer.status_code == 200:
            assert len(answer.json()) == int(path.rsplit("=", 1)[1])
        elif answer.status_code == 200:
            assert answer.json()["value"] == 129.0
    allowed = sum(1 for i in range(len(paths)) if i % 4 in (0, 1))
    assert await audit_count(world.pool) - before == allowed


async def test_a_failed_statement_fails_each_of_its_reads(setup) -> None:
    """The database gone under a batch: every read of it gets the error (a 503 each)."""
    world, apps = setup
    app = apps["fast"]
    pool = await open_batch_pool(world.database_url)
    app.state.reads = Batcher(pool, audited_reads)
    await pool.close()
    answers = await asyncio.gather(
        *(ask(app, f"/v1/devices/{world.glucose}/latest", world.manager_token) for _ in range(5))
    )
    assert [a.status_code for a in answers] == [503] * 5, [a.text for a in answers]


async def test_the_batch_pool_plans_its_statements_once(database_url: str) -> None:
    """Planning the batched statement for every batch cost three times its execution."""
    pool = await open_batch_pool(database_url)
    try:
        assert await pool.fetchval("SHOW plan_cache_mode") == "force_generic_plan"
    finally:
        await pool.close()
