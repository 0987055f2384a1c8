"""Ingest benchmark: readings/s committed end to end through HTTP, Serve, shards and PostgreSQL.

Starts the stack on a throwaway PostgreSQL (durable: fsync on, as in production) unless
``--url`` names a running Vigil; registers 1,000 devices and posts batches of 100 glucose
readings with many requests in flight for 30 s. Prints readings/s, request latency
percentiles and ``readings_per_s: N``; for a stack it started, the CPU microseconds each
component spent per accepted reading (``cpu_us_per_reading[...]``, from ``/proc`` as
``bench.alerts`` measures them; ``vigil_cpu_us_per_reading`` leaves the load generator
out); then, as the yardstick of the same run, a raw binary COPY of rows of the same shape
for the same devices into the same ``readings`` table (primary key, partitions, foreign
key) on the same database (``copy_rows_per_s``) and, last, ``ingest_ratio: X`` = Vigil end
to end ÷ raw COPY.

    .venv/bin/python -m bench.ingest [--seconds 30] [--devices 1000] [--concurrency 64]
    .venv/bin/python -m bench.ingest --url URL --database-url POSTGRES_URL
"""

from __future__ import annotations

import argparse
import asyncio
import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import aiohttp
import numpy as np
import psycopg

from bench.cpu import cpu_split, postmaster_pid, print_cpu, snapshot
from bench.stack import sign_up, vigil_stack

BATCH = 100
STEP_S = 300  # one glucose reading every 5 minutes
BATCHES_PER_DEVICE = 300  # 100 days of 5-minute readings per device, never re-sent
COPY_CHUNK = 10_000  # rows per transaction of the raw COPY yardstick
_PG_EPOCH_US = 946_684_800 * 1_000_000  # binary timestamps count from 2000-01-01
# One tuple of binary COPY into readings (device_id, ts, value, rate_per_min, direction).
_COPY_ROW = np.dtype(
    [("n", ">i2"), ("l_dev", ">i4"), ("dev", "V16"), ("l_ts", ">i4"), ("ts", ">i8"),
     ("l_v", ">i4"), ("v", ">f8"), ("l_r", ">i4"), ("r", ">f4"), ("l_d", ">i4"), ("d", "S4")]
)  # fmt: skip


async def register(session: aiohttp.ClientSession, url: str, devices: int) -> list[tuple]:
    """(device id, headers) for ``devices`` devices spread over accounts of 100 devices."""
    stamp = int(time.time())
    out: list[tuple] = []
    for u in range(0, devices, 100):
        email = f"bench-{stamp}-{u}@example.com"
        token = await sign_up(session, url, email, "benchmark passphrase")
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        for d in range(min(100, devices - u)):
            device = {"kind": "glucose", "serial": f"B{u + d}"}
            async with session.post(f"{url}/v1/devices", json=device, headers=headers) as r:
                r.raise_for_status()
                out.append(((await r.json())["id"], headers))
    return out


def body(start: datetime, batch_no: int) -> bytes:
    """Batch ``batch_no`` of a device: 100 consecutive 5-minute readings of a gentle wave."""
    first = batch_no * BATCH
    items = []
    for i in range(first, first + BATCH):
        ts = (start + timedelta(seconds=i * STEP_S)).isoformat()
        items.append(f'{{"ts":"{ts}","value":{120 + 40 * np.sin(i / 30):.1f}}}')
    return ('{"readings":[' + ",".join(items) + "]}").encode()


async def run(
    url: str,
    seconds: float,
    devices: int,
    concurrency: int,
    device_ids: list[str],
    postmaster: int | None = None,
) -> dict:
    """Post for ``seconds``; also the CPU seconds this process and its descendants (a stack
    started here) spent meanwhile, by component (``cpu_s``; ``postmaster``: PostgreSQL's, to
    count it too)."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        registered = await register(session, url, devices)
        device_ids.extend(d for d, _ in registered)
        start = datetime.now(UTC) - timedelta(days=110)
        bodies = [body(start, k) for k in range(BATCHES_PER_DEVICE)]
        latencies: list[float] = []
        counts = {"accepted": 0, "duplicates": 0, "errors": 0}
        next_batch = [0] * len(registered)
        cpu_before = snapshot(postmaster)
        deadline = time.perf_counter() + seconds
        began = time.perf_counter()

        async def worker(w: int) -> None:
            i = w
            while time.perf_counter() < deadline:
                d = i % len(registered)
                i += concurrency
                device_id, headers = registered[d]
                k = next_batch[d]
                next_batch[d] += 1
                t = time.perf_counter()
                async with session.post(
                    f"{url}/v1/devices/{device_id}/readings",
                    data=bodies[k % BATCHES_PER_DEVICE],
                    headers=headers,
                ) as r:
                    answer = await r.json() if r.status == 200 else None
                latencies.append(time.perf_counter() - t)
                if answer is None:
                    counts["errors"] += 1
                else:
                    counts["accepted"] += answer["accepted"]
                    counts["duplicates"] += answer["duplicates"]

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        elapsed = time.perf_counter() - began
        cpu = cpu_split(cpu_before, snapshot(postmaster))
    lat = np.array(latencies) * 1000
    return {
        "seconds": elapsed,
        "requests": len(latencies),
        **counts,
        "p50_ms": float(np.percentile(lat, 50)),
        "p99_ms": float(np.percentile(lat, 99)),
        "readings_per_s": counts["accepted"] / elapsed,
        "cpu_s": cpu,
    }


def copy_payload(device_ids: list[str], first_us: int, per_device: int) -> bytes:
    """Binary COPY data: ``per_device`` 5-minute readings from ``first_us`` per device."""
    n = len(device_ids) * per_device
    rows = np.zeros(n, _COPY_ROW)
    rows["n"] = 5
    rows["l_dev"], rows["l_ts"], rows["l_v"], rows["l_r"], rows["l_d"] = 16, 8, 8, 4, 4
    devs = np.frombuffer(b"".join(uuid.UUID(d).bytes for d in device_ids), "V16")
    rows["dev"] = np.repeat(devs, per_device)
    step = np.tile(np.arange(per_device, dtype=np.int64), len(device_ids))
    rows["ts"] = first_us - _PG_EPOCH_US + step * STEP_S * 1_000_000
    rows["v"] = 120 + 40 * np.sin(step / 30)
    rows["r"] = 0.1
    rows["d"] = b"Flat"
    header = b"PGCOPY\n\xff\r\n\x00" + bytes(8)
    return header + rows.tobytes() + b"\xff\xff"


def raw_copy(database_url: str, device_ids: list[str], rows_wanted: int) -> float:
    """Rows/s of binary COPY straight into ``readings``, ``COPY_CHUNK`` rows a transaction,
    a year before the rows Vigil stored (no conflict); the rows are deleted afterwards."""
    per_device = max(1, COPY_CHUNK // len(device_ids))
    chunks = max(1, rows_wanted // (per_device * len(device_ids)))
    first = (datetime.now(UTC) - timedelta(days=475)).replace(microsecond=0)
    first_us = int(first.timestamp()) * 1_000_000
    span = timedelta(seconds=STEP_S * per_device * chunks)
    payloads = [
        copy_payload(device_ids, first_us + k * per_device * STEP_S * 1_000_000, per_device)
        for k in range(chunks)
    ]
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute("SELECT vigil_ensure_readings_partitions(%s, %s)", (first, first + span))
        began = time.perf_counter()
        for payload in payloads:
            with conn.transaction(), conn.cursor() as cur:
                copy_sql = (
                    "COPY readings (device_id, ts, value, rate_per_min, direction)"
                    " FROM STDIN (FORMAT BINARY)"
                )
                with cur.copy(copy_sql) as copy:
                    copy.write(payload)
        elapsed = time.perf_counter() - began
        conn.execute("DELETE FROM readings WHERE ts >= %s AND ts < %s", (first, first + span))
    return chunks * per_device * len(device_ids) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Vigil; default: start one")
    parser.add_argument("--database-url", help="with --url: its database, for the yardstick")
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=2)
    args = parser.parse_args()

    # Ray runs its workers at nice 15; the load generator gets no more than its fair share.
    device_ids: list[str] = []
    with vigil_stack(args.url, args.database_url, shards=args.shards, replicas=args.replicas) as (
        url,
        database_url,
    ):
        os.nice(max(0, 15 - os.nice(0)))
        own_stack = args.url is None  # its processes are this one's: where the CPU went
        postmaster = postmaster_pid(database_url) if own_stack and database_url else None
        result = asyncio.run(
            run(url, args.seconds, args.devices, args.concurrency, device_ids, postmaster)
        )
        copy_per_s = None
        if database_url is not None:
            copy_per_s = raw_copy(database_url, device_ids, max(result["accepted"], 100_000))
    print(
        f"devices={args.devices} batch={BATCH} concurrency={args.concurrency} "
        f"shards={args.shards} replicas={args.replicas}"
    )
    print(
        f"requests={result['requests']} accepted={result['accepted']} "
        f"duplicates={result['duplicates']} errors={result['errors']} in {result['seconds']:.1f} s"
    )
    print(f"latency_p50_ms: {result['p50_ms']:.1f}")
    print(f"latency_p99_ms: {result['p99_ms']:.1f}")
    print(f"readings_per_s: {result['readings_per_s']:.0f}")
    if own_stack:
        print_cpu(result["cpu_s"], result["accepted"], unit="us")
    if copy_per_s is not None:
        print(f"copy_rows_per_s: {copy_per_s:.0f}  (yardstick: raw binary COPY, same table)")
        print(f"ingest_ratio: {result['readings_per_s'] / copy_per_s:.3f}")


if __name__ == "__main__":
    main()
