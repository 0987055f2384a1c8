"""Helpers for tests that drive the running stack over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import numpy as np
import psycopg

from storage.pools import open_writer_connection

# Where the test stack's shards open their ingest channels (VIGIL_SHARD_CHANNEL_PORTS).
CHANNEL_PORTS = (24000, 24099)


@dataclass
class Account:
    """A freshly signed-up user with a client that sends their bearer token."""

    client: httpx.Client
    email: str
    password: str
    headers: dict[str, str]

    def device(self, kind: str = "glucose", **extra: object) -> dict:
        body = {"kind": kind, "serial": f"SN-{uuid.uuid4().hex[:10]}", **extra}
        r = self.client.post("/v1/devices", json=body, headers=self.headers)
        assert r.status_code == 201, r.text
        return r.json()

    def upload(self, device_id: str, readings: list[dict]) -> httpx.Response:
        return self.client.post(
            f"/v1/devices/{device_id}/readings", json={"readings": readings}, headers=self.headers
        )


def sign_up(client: httpx.Client) -> Account:
    email = f"user-{uuid.uuid4().hex[:12]}@example.com"
    password = "a long enough passphrase"
    r = client.post("/v1/auth/signup", json={"email": email, "password": password, "name": "Test"})
    assert r.status_code == 202, r.text
    r = client.post("/v1/auth/token", data={"username": email, "password": password})
    assert r.status_code == 200, r.text
    headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
    return Account(client, email, password, headers)


def series(
    start: datetime, count: int, step_s: int, first: float, slope_per_min: float
) -> list[dict]:
    """Evenly spaced readings along a straight line, as the API takes them."""
    return [
        {
            "ts": (start + timedelta(seconds=i * step_s)).isoformat(),
            "value": round(first + slope_per_min * i * step_s / 60, 3),
        }
        for i in range(count)
    ]


def minutes_ago(minutes: float) -> datetime:
    return datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=minutes)


def wait_until(check, timeout_s: float = 30.0, what: str | Callable[[], str] = "condition"):
    """Poll ``check()`` until it returns something truthy (for work done after a response,
    such as audit entries written in a background task); AssertionError after ``timeout_s``,
    naming ``what`` (called then, if it is a function: what was seen instead)."""
    import time

    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, (
            f"timed out waiting for {what() if callable(what) else what}"
        )
        time.sleep(0.05)


def self_profile(account: Account) -> str:
    """The id of the account's own profile."""
    listed = account.client.get("/v1/profiles", headers=account.headers).json()
    return next(p["id"] for p in listed if p["kind"] == "self")


def share_directly(db, profile_id: str, owner_email: str, follower_email: str, scopes) -> None:
    """An active share written straight into the database (independent of the invitation
    API), for tests of what followers can and cannot do."""
    db.execute(
        "INSERT INTO shares (profile_id, invited_by, invited_email, follower_id, scopes, state,"
        " expires_at, accepted_at)"
        " SELECT %s, o.id, f.email, f.id, %s, 'active', now() + interval '7 days', now()"
        " FROM users o, users f WHERE o.email = %s AND f.email = %s",
        (profile_id, list(scopes), owner_email, follower_email),
    )


async def insert_share(
    pool, profile_id: uuid.UUID, manager_id: uuid.UUID, follower_id: uuid.UUID, scopes: list[str]
) -> uuid.UUID:
    """``share_directly`` by ids, through an asyncpg pool; returns the share's id."""
    return await pool.fetchval(
        "INSERT INTO shares (profile_id, invited_by, invited_email, follower_id, scopes,"
        " state, expires_at) VALUES ($1, $2, 'f@example.org', $3, $4, 'active',"
        " now() + interval '1 day') RETURNING id",
        profile_id,
        manager_id,
        follower_id,
        scopes,
    )


def insert_device(db, interval_s: int = 60) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A user with a self profile and a glucose device, straight in the database (for tests
    below the API); returns ``(user_id, profile_id, device_id)``."""
    user = db.execute(
        "INSERT INTO users (email, password_hash, name) VALUES (%s, 'x', 'db') RETURNING id",
        (f"db-{uuid.uuid4().hex}@example.com",),
    ).fetchone()[0]
    profile = db.execute(
        "INSERT INTO profiles (manager_id, kind, name) VALUES (%s, 'self', 'db') RETURNING id",
        (user,),
    ).fetchone()[0]
    device = db.execute(
        "INSERT INTO devices (profile_id, kind, serial, interval_s)"
        " VALUES (%s, 'glucose', %s, %s) RETURNING id",
        (profile, uuid.uuid4().hex[:8], interval_s),
    ).fetchone()[0]
    return user, profile, device


def stored_readings(db, device_id: uuid.UUID) -> int:
    """How many readings of the device the database holds."""
    return db.execute(
        "SELECT count(*) FROM readings WHERE device_id = %s", (device_id,)
    ).fetchone()[0]


def new_database(server_url: str) -> str:
    """A new, migrated database of its own on the test server; its URL."""
    from storage.migrate import migrate

    name = f"fresh_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(server_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = server_url.rsplit("/", 1)[0] + f"/{name}"
    migrate(url)
    return url


def store_readings(
    database_url: str, device_id: object, ts: np.ndarray, values: np.ndarray
) -> None:
    """Straight into the readings table (for jobs that read the database, not the ingest)."""
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(
            "SELECT vigil_ensure_readings_partitions(to_timestamp(%s), to_timestamp(%s))",
            (float(ts.min()), float(ts.max())),
        )
        with conn.cursor().copy("COPY readings (device_id, ts, value) FROM STDIN") as copy:
            for t, v in zip(ts, values, strict=True):
                copy.write_row((device_id, datetime.fromtimestamp(t, UTC), float(v)))


class CuttableDatabase:
    """A write buffer's ``connect`` to the real database that a test can cut: ``cut()``
    terminates every connection it made (their server processes) and refuses new ones
    until ``restore()``; the refusal is the OperationalError a down server gives."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.reachable = True
        self.connections: list[psycopg.AsyncConnection] = []

    async def connect(self) -> psycopg.AsyncConnection:
        if not self.reachable:
            raise psycopg.OperationalError("connection refused (the database is down)")
        self.connections.append(await open_writer_connection(self.database_url))
        return self.connections[-1]

    def cut(self, db: psycopg.Connection) -> None:
        self.reachable = False
        pids = [c.info.backend_pid for c in self.connections if not c.closed]
        db.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (pids,))

    def restore(self) -> None:
        self.reachable = True
