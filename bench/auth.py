"""Authorisation cost: request latency of the upload route with a user's access token (JWT
verify + one grant query) and with a device upload token (one hash lookup), and of a
follower's read (JWT + grant from the shares table, no cache).

Starts the stack on a throwaway PostgreSQL unless ``--url`` names a running Vigil; sends
``--requests`` sequential requests per kind and prints p50/p99 latencies in ms.

    .venv/bin/python -m bench.auth [--requests 500]
"""

from __future__ import annotations

import argparse
import statistics
import time
import uuid
from datetime import UTC, datetime, timedelta

import httpx

from bench.stack import vigil_url


def _account(c: httpx.Client) -> dict[str, str]:
    email, password = f"bench-{uuid.uuid4().hex[:10]}@example.com", "benchmark passphrase"
    c.post("/v1/auth/signup", json={"email": email, "password": password, "name": "B"})
    r = c.post("/v1/auth/token", data={"username": email, "password": password})
    r.raise_for_status()
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def _timed(send, n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        began = time.perf_counter()
        r = send(i)
        samples.append((time.perf_counter() - began) * 1000)
        assert r.status_code == 200, r.text
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


def run(url: str, n: int) -> dict[str, tuple[float, float]]:
    with httpx.Client(base_url=url, timeout=60) as c:
        owner = _account(c)
        device = c.post("/v1/devices", json={"kind": "glucose", "serial": "B1"}, headers=owner)
        device.raise_for_status()
        device = device.json()
        pid = device["profile_id"]
        code = c.post(
            f"/v1/profiles/{pid}/shares",
            json={"email": "f@example.com", "scopes": ["readings"]},
            headers=owner,
        ).json()["code"]
        follower = _account(c)
        c.post("/v1/shares/accept", json={"code": code}, headers=follower).raise_for_status()
        start = datetime.now(UTC) - timedelta(days=30)
        upload = f"/v1/devices/{device['id']}/readings"

        def reading(i: int) -> dict:
            ts = (start + timedelta(seconds=60 * i)).isoformat()
            return {"readings": [{"ts": ts, "value": 120.0}]}

        token = {"Authorization": f"Bearer {device['upload_token']}"}
        for i in range(20):  # warm up
            c.post(upload, json=reading(10_000 + i), headers=owner)
        return {
            "upload_user_jwt": _timed(lambda i: c.post(upload, json=reading(i), headers=owner), n),
            "upload_device_token": _timed(
                lambda i: c.post(upload, json=reading(n + i), headers=token), n
            ),
            "follower_latest": _timed(
                lambda i: c.get(f"/v1/devices/{device['id']}/latest", headers=follower), n
            ),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Vigil; default: start one")
    parser.add_argument("--requests", type=int, default=500)
    args = parser.parse_args()
    with vigil_url(args.url) as url:
        result = run(url, args.requests)
    print(f"requests={args.requests} sequential, one reading per upload")
    for name, (p50, p99) in result.items():
        print(f"{name}_p50_ms: {p50:.2f}")
        print(f"{name}_p99_ms: {p99:.2f}")


if __name__ == "__main__":
    main()
