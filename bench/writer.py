"""The group commit's write alone: ``ReadingsWriter`` against a raw binary COPY, same table.

A throwaway durable PostgreSQL (fsync on), ``--devices`` glucose devices; each commit
writes 100 new 5-minute readings per device, as a shard's group commit does. Measured in
the same run, on the same database: rows/s and the client's CPU per row
(``time.process_time``) of the de-duplicating write (every group through the staging table)
and of the straight-in write (groups whose rows the actor knows are newer than anything
stored), and the yardstick, a raw binary COPY of prebuilt rows into ``readings`` in
transactions of the same size (``bench.ingest``'s). Prints ``writer_ratio`` = the
straight-in write's rows/s ÷ raw COPY's.

    .venv/bin/python -m bench.writer [--devices 32] [--commits 60]
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from datetime import UTC, datetime

import numpy as np
import psycopg

from bench.ingest import raw_copy
from storage.embedded import throwaway_postgres
from storage.migrate import migrate
from storage.pools import open_writer_connection
from storage.readings import DIRECTIONS, DeviceRows, ReadingsWriter
from tests.helpers import insert_device

US = 1_000_000
STEP_US = 300 * US
PER_COMMIT = 100  # new readings per device per commit


def _devices(url: str, n: int) -> list[uuid.UUID]:
    """``n`` glucose devices, inserted directly (no API in this benchmark)."""
    with psycopg.connect(url, autocommit=True) as conn:
        return [insert_device(conn)[2] for _ in range(n)]


def _groups(devices: list[uuid.UUID], start_us: int, straight: bool) -> list[DeviceRows]:
    ts = start_us + np.arange(PER_COMMIT, dtype=np.int64) * STEP_US
    i = np.arange(PER_COMMIT)
    rates = np.where(i % 7 == 0, np.nan, 0.3)  # some not computable: NULL
    arrows = [DIRECTIONS[k % len(DIRECTIONS)] for k in range(PER_COMMIT)]
    return [
        DeviceRows(d, ts, 120 + 40 * np.sin(i / 30 + n), rates, arrows, after_stored=straight)
        for n, d in enumerate(devices)
    ]


async def _write(url: str, devices: list[uuid.UUID], first_us: int, commits: int, straight: bool):
    """(rows/s, client CPU µs per row) of ``commits`` group commits."""
    conn = await open_writer_connection(url)
    writer = ReadingsWriter(conn)
    span_us = PER_COMMIT * STEP_US
    batches = [_groups(devices, first_us + c * span_us, straight) for c in range(commits)]
    await writer.write(_groups(devices, first_us - span_us, straight))  # partitions, staging
    cpu0, wall0 = time.process_time(), time.perf_counter()
    for groups in batches:
        masks = await writer.write(groups)
        if not all(m.all() for m in masks):
            raise SystemExit("a new row was reported as a duplicate")
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    await conn.close()
    rows = commits * len(devices) * PER_COMMIT
    return rows / wall, 1e6 * cpu / rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--devices", type=int, default=32)
    parser.add_argument("--commits", type=int, default=60)
    args = parser.parse_args()
    with throwaway_postgres("vigil-writer-") as db:
        url = db.url()
        migrate(url)
        devices = _devices(url, args.devices)
        day_us = 86_400 * US
        now_us = int(datetime.now(UTC).timestamp()) * US
        span_us = args.commits * PER_COMMIT * STEP_US
        dedup = asyncio.run(
            _write(url, devices, now_us - 4 * span_us - day_us, args.commits, False)
        )
        direct = asyncio.run(
            _write(url, devices, now_us - 2 * span_us - day_us, args.commits, True)
        )
        copy = raw_copy(url, [str(d) for d in devices], args.commits * len(devices) * PER_COMMIT)
    print(f"devices={args.devices} rows_per_commit={args.devices * PER_COMMIT}")
    print(f"writer_dedup: {dedup[0]:.0f} rows/s, client CPU {dedup[1]:.2f} us/row")
    print(f"writer_straight_in: {direct[0]:.0f} rows/s, client CPU {direct[1]:.2f} us/row")
    print(f"copy_rows_per_s: {copy:.0f}  (yardstick: raw binary COPY, same table)")
    print(f"writer_ratio: {direct[0] / copy:.3f}")


if __name__ == "__main__":
    main()
