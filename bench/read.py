"""Read benchmark: ``GET …/latest`` and ``GET …/readings`` against a plain FastAPI app.

Starts the stack on a throwaway PostgreSQL unless ``--url`` names a running Vigil; signs up
followers of one person's CGM (each with their own token, through a share) and has
``--clients`` keep-alive clients read, half ``/latest``, half ``/readings?limit=12``, for
``--seconds``. The yardstick, in the same run and on the same machine: a plain FastAPI app
returning a constant JSON body, on uvicorn with one worker per core, read the same way for
half as long just before the stack starts and again just after it stops (each on a quiet
machine: the machine's speed drifts within minutes, and the two sides of Vigil's window
average that out; with ``--url`` that stack stays up meanwhile). Prints requests/s and
p50/p99 of each and, last, ``read_ratio: X`` = Vigil ÷ the mean of the plain app's two.

    .venv/bin/python -m bench.read [--seconds 20] [--clients 64]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import httpx
import numpy as np
from fastapi import FastAPI

from bench.stack import uvicorn_server, vigil_url
from storage.embedded import free_port

PASSWORD = "benchmark passphrase 7"
FOLLOWERS = 8

# The yardstick app, imported by uvicorn's workers as ``bench.read:plain``.
plain = FastAPI()


@plain.get("/latest")
async def _latest() -> dict:
    return {"ts": "2026-11-30T10:00:00Z", "value": 112.0, "unit": "mg/dL",
            "trend": {"rate_per_min": 0.4, "direction": "Flat"}}  # fmt: skip


def _account(c: httpx.Client) -> tuple[str, dict]:
    email = f"read-{uuid.uuid4().hex[:8]}@example.com"
    c.post("/v1/auth/signup", json={"email": email, "password": PASSWORD, "name": "R"})
    r = c.post("/v1/auth/token", data={"username": email, "password": PASSWORD})
    return email, {"Authorization": f"Bearer {r.json()['access_token']}"}


def prepare(url: str) -> tuple[list[str], list[dict]]:
    """An owner's CGM with a day of 5-minute readings, and followers with `readings`."""
    with httpx.Client(base_url=url, timeout=120) as c:
        _email, owner = _account(c)
        device = c.post("/v1/devices", json={"kind": "glucose", "serial": "R1"}, headers=owner)
        device.raise_for_status()
        d = device.json()
        start = datetime.now(UTC) - timedelta(days=1)
        readings = [
            {"ts": (start + timedelta(minutes=5 * i)).isoformat(), "value": 100 + i % 40}
            for i in range(288)
        ]
        c.post(f"/v1/devices/{d['id']}/readings", json={"readings": readings}, headers=owner)
        followers = []
        for _ in range(FOLLOWERS):
            email, headers = _account(c)
            share = {"email": email, "scopes": ["readings"]}
            r = c.post(f"/v1/profiles/{d['profile_id']}/shares", json=share, headers=owner)
            code = r.json()["code"]
            c.post("/v1/shares/accept", json={"code": code}, headers=headers).raise_for_status()
            followers.append(headers)
        base = f"{url}/v1/devices/{d['id']}"
        return [f"{base}/latest", f"{base}/readings?limit=12"], followers


async def hammer(paths: list[str], headers: list[dict], clients: int, seconds: float) -> dict:
    """``clients`` keep-alive clients, each reading in a loop; requests/s and latency."""
    latencies: list[float] = []
    errors = 0
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def client(n: int) -> None:
            nonlocal errors
            path, h = paths[n % len(paths)], headers[n % len(headers)]
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                async with session.get(path, headers=h) as r:
                    await r.read()
                    errors += r.status != 200
                latencies.append(time.perf_counter() - t)

        began = time.perf_counter()
        await asyncio.gather(*(client(n) for n in range(clients)))
        elapsed = time.perf_counter() - began
    lat = np.array(latencies) * 1000
    return {
        "per_s": len(latencies) / elapsed,
        "p50": float(np.percentile(lat, 50)),
        "p99": float(np.percentile(lat, 99)),
        "errors": errors,
    }


def plain_app(clients: int, seconds: float) -> dict:
    """The yardstick: the constant-body app on uvicorn, one worker per core."""
    port = free_port()
    server = uvicorn_server("bench.read:plain", port, "/latest", workers=os.cpu_count() or 1)
    try:
        url = f"http://127.0.0.1:{port}/latest"
        return asyncio.run(hammer([url], [{}], clients, seconds))
    finally:
        server.terminate()
        server.wait(30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Vigil; default: start one")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--replicas", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()
    before = plain_app(args.clients, args.seconds / 2)
    with vigil_url(args.url, replicas=args.replicas) as url:
        paths, followers = prepare(url)
        asyncio.run(hammer(paths, followers, args.clients, 3))  # warm up
        vigil = asyncio.run(hammer(paths, followers, args.clients, args.seconds))
    after = plain_app(args.clients, args.seconds / 2)
    print(f"clients={args.clients} seconds={args.seconds} replicas={args.replicas}")
    for name, r in (
        ("plain_fastapi_uvicorn_before", before),
        ("vigil", vigil),
        ("plain_fastapi_uvicorn_after", after),
    ):
        print(
            f"{name}: {r['per_s']:.0f} requests/s p50 {r['p50']:.1f} ms"
            f" p99 {r['p99']:.1f} ms errors {r['errors']}"
        )
    yardstick = (before["per_s"] + after["per_s"]) / 2
    print(f"read_ratio: {vigil['per_s'] / yardstick:.3f}")


if __name__ == "__main__":
    main()
