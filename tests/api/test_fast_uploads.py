"""The readings upload answered below FastAPI (``api.fast_uploads``) answers exactly as the
route does: the same status, body and headers and the same rows stored, for every case a
client can bring — and the fast lane really answers the common ones.

Two apps over one real PostgreSQL and one real ``DeviceShard`` (in this process: the
router's Ray call is the only part left out): one as deployed, one with
``fast_lanes=False``. Each app has a world of its own (uploads store rows), built alike."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from fastapi import FastAPI

from actors.shard import DeviceShard, ShardConfig
from api.app import create_app
from api.config import ApiConfig
from api.fast_uploads import FastUploads
from api.routes.upload_tokens import UploadChecks
from api.tokens import UPLOAD_TOKEN_PREFIX, KeyStore, hash_secret
from storage import accounts, devices, profiles, upload_tokens
from storage.batches import open_batch_pool
from storage.pools import open_pool
from tests.helpers import insert_share


class World:
    """A manager with a glucose and a temperature device (with upload tokens), followers
    with `manage` and with `readings` only, and a stranger."""

    def __init__(self, pool: asyncpg.Pool, keys: KeyStore) -> None:
        self.pool, self.keys = pool, keys
        self.tokens: dict[str, str] = {}
        self.devices: dict[str, uuid.UUID] = {}

    async def user(self, name: str) -> uuid.UUID:
        tag = uuid.uuid4().hex[:10]
        row = await accounts.create_user(self.pool, f"{tag}@example.org", "x", name)
        self.tokens[name] = self.keys.issue(row["id"])[0]
        return row["id"]

    async def device(self, name: str, profile: uuid.UUID, kind: str) -> None:
        row = await devices.create_device(self.pool, profile, kind, uuid.uuid4().hex[:12], None, 60)
        self.devices[name] = row["id"]
        token = UPLOAD_TOKEN_PREFIX + secrets.token_urlsafe(32)
        await upload_tokens.replace_token(self.pool, row["id"], hash_secret(token))
        self.tokens[f"{name}'s token"] = token

    async def build(self) -> None:
        manager = await self.user("manager")
        profile = await profiles.self_profile_id(self.pool, manager)
        await self.device("cgm", profile, "glucose")
        await self.device("patch", profile, "temperature")
        self.devices["unknown"] = uuid.uuid4()
        for follower, scopes in (("carer", ["manage"]), ("reader", ["readings"])):
            await insert_share(self.pool, profile, manager, await self.user(follower), scopes)
        await self.user("stranger")
        self.tokens["forged"] = "eyJhbGciOiJFZERTQSJ9.e30.c2ln"

    async def stored(self) -> dict[str, int]:
        rows = await self.pool.fetch(
            "SELECT device_id, count(*) AS n FROM readings WHERE device_id = ANY($1::uuid[])"
            " GROUP BY device_id",
            list(self.devices.values()),
        )
        by_id = {r["device_id"]: r["n"] for r in rows}
        return {name: by_id.get(d, 0) for name, d in self.devices.items()}


@pytest.fixture
async def setup(database_url: str) -> AsyncIterator[dict[str, tuple[FastAPI, World]]]:
    pool = await open_pool(database_url)
    batch_pool = await open_batch_pool(database_url)
    keys = KeyStore(pool, "http://vigil.test", 900)
    await keys.load()
    config = ApiConfig(database_url=database_url)
    shard = DeviceShard(0, ShardConfig(database_url=database_url))
    setup = {}
    for name, lanes in (("fast", True), ("routed", False)):
        app = create_app(config, connect=False, fast_lanes=lanes)
        app.state.pool, app.state.keys, app.state.config = pool, keys, config
        app.state.upload_checks = UploadChecks.on(batch_pool)
        app.state.router = shard  # DeviceShard.ingest is the router's ingest, in process
        world = World(pool, keys)
        await world.build()
        setup[name] = (app, world)
    yield setup
    await shard.close()
    await batch_pool.close()
    await pool.close()


def fast_lane(app: FastAPI) -> FastUploads:
    if app.middleware_stack is None:  # built on the first request otherwise
        app.middleware_stack = app.build_middleware_stack()
    layer: Any = app.middleware_stack
    while not isinstance(layer, FastUploads):
        layer = getattr(layer, "app", None)
        assert layer is not None, "no FastUploads in the app's middleware"
    return layer


def readings(n: int, value: float = 120.0, start_min: int = 30) -> list[dict]:
    t0 = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=start_min)
    return [{"ts": (t0 + timedelta(minutes=i)).isoformat(), "value": value} for i in range(n)]


# A case: (what, device, credential, path suffix, body (bytes or JSON), extra headers,
# answered by the fast lane).
Case = tuple[str, str, str | None, str, Any, dict[str, str], bool]
BATCH = readings(3)
CASES: list[Case] = [
    ("the manager's batch", "cgm", "manager", "", {"readings": BATCH}, {}, True),
    ("sent again: duplicates", "cgm", "manager", "", {"readings": BATCH}, {}, True),
    ("the device's upload token", "cgm", "cgm's token", "", {"readings": readings(2, 130, 10)},
     {}, True),
    ("a follower with manage", "cgm", "carer", "", {"readings": readings(1, 90, 5)}, {}, True),
    ("a temperature batch", "patch", "manager", "",
     {"readings": [{**r, "value": 36.6} for r in readings(4)]}, {}, True),
    ("JSON by a +json type", "cgm", "manager", "", {"readings": readings(1, 95, 3)},
     {"content-type": "application/vnd.vigil+json"}, True),
    ("another device's token: 403", "patch", "cgm's token", "", {"readings": BATCH}, {}, True),
    ("readings only: 403", "cgm", "reader", "", {"readings": BATCH}, {}, True),
    ("a stranger: 404", "cgm", "stranger", "", {"readings": BATCH}, {}, True),
    ("an unknown device: 404", "unknown", "manager", "", {"readings": BATCH}, {}, True),
    ("a forged access token: 401", "cgm", "forged", "", {"readings": BATCH}, {}, True),
    ("a made-up upload token: 401", "cgm", "made-up", "", {"readings": BATCH}, {}, True),
    ("a value no sensor reads: 422 by the shard", "cgm", "manager", "",
     {"readings": readings(2, 5000.0)}, {}, True),
    ("an empty batch", "cgm", "manager", "", {"readings": []}, {}, True),
    # handed on to FastAPI: it answers these itself
    ("no credential: 401", "cgm", None, "", {"readings": BATCH}, {}, False),
    ("not JSON: 422", "cgm", "manager", "", b"{readings", {}, False),
    ("a duplicate key: 422", "cgm", "manager", "", b'{"readings": [], "readings": []}', {},
     False),
    ("an unknown field: 422", "cgm", "manager", "", {"readings": BATCH, "extra": 1}, {}, False),
    ("a Unix time: 422", "cgm", "manager", "", {"readings": [{"ts": 1.7e9, "value": 100}]}, {},
     False),
    ("a body site on a CGM: 422", "cgm", "manager", "",
     {"readings": BATCH, "body_site": "axilla"}, {}, True),
    ("a body site on a patch", "patch", "manager", "",
     {"readings": [{**r, "value": 36.9} for r in readings(2, 0, 50)], "body_site": "axilla"},
     {}, True),  # as the BLE gateway sends every thermometer's batch
    ("not JSON by its type: 422", "cgm", "manager", "", {"readings": BATCH},
     {"content-type": "text/plain"}, False),
    ("a query string (ignored by the route)", "cgm", "manager", "?x=1",
     {"readings": readings(1, 101, 40)}, {}, False),
]  # fmt: skip


async def send(app: FastAPI, world: World, case: Case) -> httpx.Response:
    _, device, credential, suffix, body, headers, _ = case
    path = f"/v1/devices/{world.devices[device]}/readings{suffix}"
    sent = {"user-agent": "test-agent/1", **headers}
    if credential == "made-up":
        sent["authorization"] = f"Bearer {UPLOAD_TOKEN_PREFIX}{secrets.token_urlsafe(32)}"
    elif credential is not None:
        sent["authorization"] = f"Bearer {world.tokens[credential]}"
    content = body if isinstance(body, bytes) else httpx.Request("POST", "/", json=body).content
    if "content-type" not in headers:
        sent["content-type"] = "application/json"
    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 4711))
    async with httpx.AsyncClient(transport=transport, base_url="http://vigil.test") as client:
        return await client.post(path, content=content, headers=sent)


HEADERS = (
    "content-type",
    "content-length",
    "www-authenticate",
    "retry-after",
    "cache-control",
    "x-content-type-options",
    "content-security-policy",
)


async def test_every_case_answers_as_the_route_does_and_stores_the_same(setup) -> None:
    (fast, fast_world), (routed, routed_world) = setup["fast"], setup["routed"]
    lane = fast_lane(fast)
    statuses = set()
    for case in CASES:
        what, answered_fast = case[0], case[-1]
        before = lane.answered
        a = await send(fast, fast_world, case)
        assert (lane.answered - before == 1) is answered_fast, what
        b = await send(routed, routed_world, case)
        assert (a.status_code, a.content) == (b.status_code, b.content), what
        for header in HEADERS:
            assert a.headers.get(header) == b.headers.get(header), (what, header)
        assert await fast_world.stored() == await routed_world.stored(), what
        statuses.add(a.status_code)
    assert statuses == {200, 401, 403, 404, 422}  # every kind of answer was compared
    assert (await fast_world.stored())["cgm"] == 3 + 2 + 1 + 1 + 1  # every stored batch


async def test_a_body_in_several_parts_is_read_whole(setup) -> None:
    app, world = setup["fast"]
    lane = fast_lane(app)
    content = httpx.Request("POST", "/", json={"readings": readings(5, 110, 20)}).content
    parts: list[bytes] = [content[i : i + 7] for i in range(0, len(content), 7)]

    async def chunks() -> AsyncIterator[bytes]:
        for part in parts:
            yield part

    headers = {
        "authorization": f"Bearer {world.tokens['manager']}",
        "content-type": "application/json",
    }
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://vigil.test") as client:
        r = await client.post(
            f"/v1/devices/{world.devices['cgm']}/readings", content=chunks(), headers=headers
        )
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 5, "duplicates": 0}
    assert lane.answered == 1


async def test_a_chunked_body_over_the_ceiling_is_refused_as_the_route_does(setup) -> None:
    """The body limit stops reading past its ceiling (413) in the fast lane as in FastAPI."""
    answers = {}
    for name, (app, world) in setup.items():

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(70):  # 70 times 64 KiB: over the 4 MB ceiling, no Content-Length
                yield b" " * 65_536

        headers = {
            "authorization": f"Bearer {world.tokens['manager']}",
            "content-type": "application/json",
        }
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil.test") as c:
            answers[name] = await c.post(
                f"/v1/devices/{world.devices['cgm']}/readings", content=chunks(), headers=headers
            )
    a, b = answers["fast"], answers["routed"]
    assert a.status_code == 413, a.text
    assert (a.status_code, a.content) == (b.status_code, b.content)
