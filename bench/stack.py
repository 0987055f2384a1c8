"""The stack a benchmark measures: a running Vigil (``--url``) or a throwaway local one."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import httpx


@contextmanager
def vigil_url(url: str | None, *, shards: int = 2, replicas: int = 2) -> Iterator[str]:
    """``url`` itself when given; otherwise a local stack on a throwaway, durable
    (fsync on) PostgreSQL, stopped and removed on exit."""
    with vigil_stack(url, None, shards=shards, replicas=replicas) as (vigil, _database):
        yield vigil


@contextmanager
def vigil_stack(
    url: str | None, database_url: str | None, *, shards: int = 2, replicas: int = 2
) -> Iterator[tuple[str, str | None]]:
    """:func:`vigil_url` and the database it writes to (for a yardstick measured on the
    same database): ``database_url`` as given with ``url``, else the throwaway one's."""
    if url is not None:
        yield url, database_url
        return
    with local_stack(shards=shards, replicas=replicas) as (local_url, _, local_database):
        yield local_url, local_database


@contextmanager
def local_stack(
    *, shards: int = 2, replicas: int = 2, access_token_ttl_s: int = 15 * 60
) -> Iterator[tuple[str, Path, str]]:
    """A local stack on a throwaway, durable PostgreSQL: (its URL, the database's data
    directory, the database's URL), stopped and removed on exit."""
    from api.config import Rate, RateLimits
    from cluster.settings import Settings
    from cluster.stack import start_stack
    from storage.embedded import free_port, throwaway_postgres

    # Every account of a benchmark signs up from 127.0.0.1 (2,000 devices are 20 accounts).
    lifted = Rate(count=100_000, window_s=60)
    with throwaway_postgres("vigil-bench-") as db:
        settings = Settings(
            data_dir=db.data_dir.parent,
            http_port=free_port(),
            shard_count=shards,
            api_replicas=replicas,
            access_token_ttl_s=access_token_ttl_s,
            rate_limits=RateLimits(signup_per_address=lifted, login_per_address=lifted),
        )
        stack = start_stack(settings, database_url=db.url())
        try:
            yield stack.url, db.pgdata, db.url()
        finally:
            stack.stop()


async def sign_up(session: aiohttp.ClientSession, url: str, email: str, password: str) -> str:
    """Sign a new benchmark account up and log it in; its access token."""
    signup = {"email": email, "password": password, "name": "B"}
    async with session.post(f"{url}/v1/auth/signup", json=signup) as r:
        r.raise_for_status()
    form = {"username": email, "password": password}
    async with session.post(f"{url}/v1/auth/token", data=form) as r:
        answer = await r.json()
    if "access_token" not in answer:
        raise RuntimeError(f"no token for the benchmark account: {answer}")
    return answer["access_token"]


def uvicorn_server(app: str, port: int, probe: str, *, workers: int = 1) -> subprocess.Popen:
    """A yardstick app (``module:attribute``) on its own uvicorn, answering ``probe`` (a
    path) before this returns; stopped and an error raised if it does not start."""
    server = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--port", str(port), "--workers", str(workers),
         "--no-access-log", "--log-level", "warning"],
    )  # fmt: skip
    for _ in range(300):
        try:
            httpx.get(f"http://127.0.0.1:{port}{probe}", timeout=1).raise_for_status()
            return server
        except httpx.HTTPError:
            time.sleep(0.1)
    server.kill()
    server.wait()
    raise RuntimeError(f"{app} on port {port} did not start")
