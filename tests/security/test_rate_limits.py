"""Issue 10, finding 9: expensive work is limited per user, address, recipient and link.

Three layers: the shared counters against the real PostgreSQL (two pools standing for two
replicas); the per-address limits through the real app with low limits and a chosen client
address (the shared stack lifts them: every test connects from 127.0.0.1); and per-user,
per-link, per-recipient limits and the two per-replica bounds (argon2 threads, the PDF
queue) through the running stack."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor

import asyncpg
import httpx
import pytest

from api import passwords
from api.app import create_app
from api.config import ApiConfig, Rate, RateLimits
from api.rate_limits import allowed
from api.tokens import KeyStore
from tests.helpers import Account, self_profile, sign_up


def retry_after(r: httpx.Response) -> int:
    assert r.status_code == 429, (r.status_code, r.text)
    seconds = int(r.headers["Retry-After"])
    assert seconds >= 1
    return seconds


# -- the shared counters ---------------------------------------------------------------------


def test_counters_are_shared_by_replicas_and_exact_under_concurrency(database_url: str) -> None:
    limits = RateLimits(export_per_user=Rate(count=10, window_s=60))
    subject = uuid.uuid4().hex

    async def main() -> list[float]:
        replicas = [await asyncpg.create_pool(database_url, min_size=1, max_size=5) for _ in "ab"]
        try:
            hits = [allowed(replicas[i % 2], limits, "export_per_user", subject) for i in range(40)]
            return await asyncio.gather(*hits)
        finally:
            for pool in replicas:
                await pool.close()

    answers = asyncio.run(main())
    assert sum(1 for a in answers if a == 0) == 10
    assert all(1 <= a <= 60 for a in answers if a)


def test_a_new_window_allows_again(database_url: str) -> None:
    limits = RateLimits(export_per_user=Rate(count=2, window_s=1))
    subject = uuid.uuid4().hex

    async def main() -> list[float]:
        async with asyncpg.create_pool(database_url, min_size=1, max_size=2) as pool:
            first = [await allowed(pool, limits, "export_per_user", subject) for _ in range(3)]
            await asyncio.sleep(1.2)
            return [*first, await allowed(pool, limits, "export_per_user", subject)]

    assert [bool(a) for a in asyncio.run(main())] == [False, False, True, False]


# -- per address, through the real app with low limits ---------------------------------------

LOW = Rate(count=3, window_s=600)


@pytest.fixture
def low_limits_app(database_url: str):
    """The API app with per-address limits of 3 (its database state set up as the lifespan
    does, without the shard router: these routes do not use it)."""
    limits = RateLimits(
        signup_per_address=LOW,
        login_per_address=LOW,
        reset_per_address=LOW,
        link_open_per_address=LOW,
    )
    config = ApiConfig(database_url=database_url, rate_limits=limits)
    return create_app(config, connect=False), config


async def _client(app, config: ApiConfig, address: str) -> AsyncIterator[httpx.AsyncClient]:
    pool = await asyncpg.create_pool(config.database_url, min_size=1, max_size=4)
    keys = KeyStore(pool, config.issuer, config.access_token_ttl_s)
    await keys.load()
    app.state.pool, app.state.keys, app.state.config = pool, keys, config
    transport = httpx.ASGITransport(app=app, client=(address, 40000))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://vigil") as c:
            yield c
    finally:
        await pool.close()


def per_address(app_and_config, send) -> list[httpx.Response]:
    """Five of ``send(client, i)`` from one fresh address, then one from another."""
    app, config = app_and_config
    address = f"198.18.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 1}"

    async def main() -> list[httpx.Response]:
        got = []
        async for c in _client(app, config, address):
            got = [await send(c, i) for i in range(5)]
        async for c in _client(app, config, "198.19.0.1"):
            got.append(await send(c, 5))
        return got

    return asyncio.run(main())


def test_signups_per_address(low_limits_app) -> None:
    def send(c: httpx.AsyncClient, i: int):
        body = {"email": f"s{i}-{uuid.uuid4().hex[:8]}@example.com", "name": "S"}
        return c.post("/v1/auth/signup", json={**body, "password": "a long enough passphrase"})

    got = per_address(low_limits_app, send)
    assert [r.status_code for r in got[:3]] == [202] * 3
    assert retry_after(got[3]) <= 600 and retry_after(got[4]) <= 600


def test_logins_per_address(low_limits_app) -> None:
    def send(c: httpx.AsyncClient, i: int):
        form = {"username": f"x{i}-{uuid.uuid4().hex[:6]}@example.com", "password": "wrong one"}
        return c.post("/v1/auth/token", data=form)

    got = per_address(low_limits_app, send)
    assert [r.status_code for r in got[:3]] == [401] * 3
    retry_after(got[3])
    assert got[5].status_code == 401  # another address is not limited


def test_password_resets_per_address(low_limits_app) -> None:
    def send(c: httpx.AsyncClient, i: int):
        return c.post("/v1/auth/password-reset", json={"email": f"n{i}@example.com"})

    got = per_address(low_limits_app, send)
    assert [r.status_code for r in got[:3]] == [202] * 3
    retry_after(got[3])
    assert got[5].status_code == 202


def test_report_link_openings_per_address(low_limits_app) -> None:
    def send(c: httpx.AsyncClient, i: int):
        return c.get(f"/v1/report-links/{'x' * 30}{i}", params={"format": "json"})

    got = per_address(low_limits_app, send)
    assert [r.status_code for r in got[:3]] == [404] * 3  # guessing tokens counts too
    retry_after(got[3])
    assert got[5].status_code == 404


# -- per user, link and recipient, through the running stack ---------------------------------


def test_exports_per_user(account: Account, stack) -> None:
    limit = RateLimits().export_per_user.count
    c, mine = account.client, {**account.headers, "Accept": "application/json"}
    codes = [c.get("/v1/me/export", headers=mine).status_code for _ in range(limit)]
    assert codes == [200] * limit
    retry_after(c.get("/v1/me/export", headers=mine))
    other = sign_up(c)  # another user is not limited
    theirs = {**other.headers, "Accept": "application/json"}
    assert c.get("/v1/me/export", headers=theirs).status_code == 200


def test_reports_per_user(account: Account, stack) -> None:
    limit = RateLimits().report_per_user.count
    path = f"/v1/profiles/{self_profile(account)}/report"
    c = account.client
    codes = [c.get(path, params={"days": 1}, headers=account.headers) for _ in range(limit)]
    assert [r.status_code for r in codes] == [200] * limit
    retry_after(c.get(path, params={"days": 1, "format": "pdf"}, headers=account.headers))


def _link(account: Account) -> str:
    pid = self_profile(account)
    r = account.client.post(
        f"/v1/profiles/{pid}/report-links", json={"days": 1}, headers=account.headers
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_openings_per_link(account: Account, stack) -> None:
    limit = RateLimits().link_open_per_link.count
    path = f"/v1/report-links/{_link(account)}"
    c = account.client
    codes = [c.get(path, params={"format": "json"}).status_code for _ in range(limit)]
    assert codes == [200] * limit
    retry_after(c.get(path, params={"format": "json"}))
    assert c.get(f"/v1/report-links/{_link(account)}", params={"format": "json"}).is_success


def test_emails_per_recipient_are_capped_silently(account: Account, smtp) -> None:
    cap = RateLimits().emails_per_recipient.count
    c = account.client
    for _ in range(cap + 3):  # sign-up notices and reset emails share the cap
        body = {"email": account.email, "password": "another long passphrase", "name": "X"}
        assert c.post("/v1/auth/signup", json=body).status_code == 202
        assert c.post("/v1/auth/password-reset", json={"email": account.email}).status_code == 202
    assert len(smtp.inbox.wait_for(account.email, count=cap)) == cap
    time.sleep(2)  # background sends of anything past the cap would have arrived
    assert len(smtp.inbox.to(account.email)) == cap


def test_per_address_counts_use_the_real_peer(stack, db) -> None:
    address = f"127.0.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250 + 2}"
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(base_url=stack.url, transport=transport, timeout=60) as c:
        for _ in range(3):
            r = c.post("/v1/auth/token", data={"username": "x@example.com", "password": "nope"})
            assert r.status_code == 401
    counted = db.execute(
        "SELECT count FROM rate_counters WHERE key = %s", (f"login_per_address:{address}",)
    ).fetchone()
    assert counted == (3,)


# -- the per-replica bounds -------------------------------------------------------------------


def test_password_hashing_runs_in_a_bounded_pool() -> None:
    passwords.configure(2)
    passwords.pool.peak = 0

    async def main() -> list[str]:
        return await asyncio.gather(*(passwords.hash_password(f"pw {i}") for i in range(8)))

    hashes = asyncio.run(main())
    assert len(set(hashes)) == 8
    assert passwords.pool.peak == 2  # reached, never passed


def test_pdfs_beyond_the_queue_get_429_at_once(account: Account, stack) -> None:
    waiting_max = RateLimits().pdf_waiting_max
    path = f"{stack.url}/v1/report-links/{_link(account)}"
    many = 4 * (waiting_max + 1)

    def fetch(_: int) -> tuple[int, float, str | None]:
        started = time.monotonic()
        r = httpx.get(path, params={"format": "pdf"}, timeout=120)
        return r.status_code, time.monotonic() - started, r.headers.get("Retry-After")

    with ThreadPoolExecutor(many) as pool:
        got = list(pool.map(fetch, range(many)))
    refused = [g for g in got if g[0] == 429]
    served = [g for g in got if g[0] == 200]
    assert len(served) + len(refused) == many, got
    # all arrive while the first renders, give or take the few that come after one ended
    assert len(served) >= 1 and len(refused) >= many // 2, got
    assert all(g[2] for g in refused)
    assert max(g[1] for g in refused) < max(g[1] for g in served), got
