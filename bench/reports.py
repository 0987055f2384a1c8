"""Benchmark of reports and charts on a throwaway PostgreSQL.

    .venv/bin/python -m bench.reports [--profiles 1000] [--days 15]

* ``pdf_s``: one 15-day PDF report of a profile with 5-minute glucose data and events, as the
  ``/report?format=pdf`` route makes it: load from the database, compute, render (median of
  5 after a warm-up; the cold first one is printed too). Target < 2 s.
* ``batch_profiles_per_s``: ``vigil reports batch`` (Ray tasks over chunks of 50 profiles on
  a local Ray) for ``--profiles`` profiles x ``--days`` days of 5-minute data, metrics only,
  Parquet written; Ray start-up excluded, worker start-up included (first run). Target > 20.
* ``chart_3d_ms``: server time of a 3-day chart of a 1-minute sensor (access check, bucketed
  query, events, response serialisation), each call with a different window end, median of
  50 (p95 printed too). Target < 100 ms.

Data are generated with numpy and written with one binary COPY.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import struct
import time
import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg

PG_EPOCH_S = 946_684_800
_ROW = np.dtype([("nf", ">i2"), ("l1", ">i4"), ("dev", "V16"), ("l2", ">i4"), ("ts", ">i8"),
                 ("l3", ">i4"), ("v", ">f8")])  # fmt: skip


def copy_readings(conn: psycopg.Connection, device: np.ndarray, ts_s: np.ndarray, v: np.ndarray):
    """One binary COPY of (device uuid bytes, epoch seconds, value) rows."""
    rows = np.empty(ts_s.size, dtype=_ROW)
    rows["nf"], rows["l1"], rows["l2"], rows["l3"] = 3, 16, 8, 8
    rows["dev"] = device
    rows["ts"] = np.round((ts_s - PG_EPOCH_S) * 1e6).astype(np.int64)
    rows["v"] = v
    payload = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0) + rows.tobytes() + b"\xff\xff"
    conn.execute(
        "SELECT vigil_ensure_readings_partitions(to_timestamp(%s), to_timestamp(%s))",
        (float(ts_s.min()), float(ts_s.max())),
    )
    with conn.cursor().copy("COPY readings (device_id, ts, value) FROM STDIN (FORMAT binary)") as c:
        step = 1 << 24
        for i in range(0, len(payload), step):
            c.write(payload[i : i + step])


def populate(url: str, profiles: int, days: int, end: datetime) -> dict:
    rng = np.random.default_rng(42)
    n = days * 288
    with psycopg.connect(url, autocommit=True) as conn:
        user = conn.execute(
            "INSERT INTO users (email, password_hash, name) VALUES ('bench@example.com', 'x',"
            " 'Bench') RETURNING id"
        ).fetchone()[0]  # type: ignore[index]  # INSERT ... RETURNING: always one row
        pids = [uuid.uuid4() for _ in range(profiles)]
        dids = [uuid.uuid4() for _ in range(profiles)]
        with conn.cursor().copy(
            "COPY profiles (id, manager_id, kind, name, timezone) FROM STDIN"
        ) as c:
            for i, pid in enumerate(pids):
                c.write_row((pid, user, "dependent", f"Person {i}", "Europe/Paris"))
        with conn.cursor().copy(
            "COPY devices (id, profile_id, kind, serial, interval_s) FROM STDIN"
        ) as c:
            for i, (did, pid) in enumerate(zip(dids, pids, strict=True)):
                c.write_row((did, pid, "glucose", f"B{i}", 300))
        t0 = time.perf_counter()
        ts = end.timestamp() - np.arange(1, n + 1)[::-1] * 300.0
        hours = ts / 3600.0
        base = rng.uniform(110, 170, (profiles, 1))
        amp = rng.uniform(20, 80, (profiles, 1))
        phase = rng.uniform(0, 2 * np.pi, (profiles, 1))
        g = base + amp * np.sin(2 * np.pi * hours / 24 + phase) + 30 * np.sin(hours / 2.3)
        g = np.clip(np.round(g + rng.normal(0, 9, g.shape), 1), 40, 400)
        dev = np.repeat(np.array([d.bytes for d in dids], dtype="V16"), n)
        copy_readings(conn, dev, np.tile(ts, profiles), g.ravel())
        loaded = time.perf_counter() - t0
        # A 1-minute CGM on the first profile for the chart, and events for the PDF.
        chart_dev = uuid.uuid4()
        conn.execute(
            "INSERT INTO devices (id, profile_id, kind, serial, interval_s)"
            " VALUES (%s, %s, 'glucose', 'CHART', 60)",
            (chart_dev, pids[1]),
        )
        cts = end.timestamp() - np.arange(1, 7 * 1440 + 1)[::-1] * 60.0
        cg = np.clip(140 + 60 * np.sin(cts / 9000.0) + rng.normal(0, 5, cts.size), 40, 400)
        copy_readings(conn, np.full(cts.size, chart_dev.bytes, dtype="V16"), cts, cg)
        for k in range(days * 4):
            when = end - timedelta(hours=6 * k + 1)
            for pid in (pids[0], pids[1]):
                conn.execute(
                    "INSERT INTO events (profile_id, kind, ts, details) VALUES (%s, %s, %s, '{}')",
                    (pid, ("meal", "insulin", "exercise", "note")[k % 4], when),
                )
        conn.execute("ANALYZE")
    return {"user": user, "profiles": pids, "loaded_s": loaded, "rows": profiles * n}


async def time_pdf(url: str, profile_id: uuid.UUID, days: int, end: datetime):
    from api.reporting.pdf import render_report_pdf
    from api.reporting.report import load_report
    from storage.pools import open_pool

    pool = await open_pool(url)
    times = []
    size = 0
    try:
        for _ in range(6):
            t0 = time.perf_counter()
            report, loaded = await load_report(pool, profile_id, days, end)
            pdf = await asyncio.to_thread(
                render_report_pdf, report, loaded.get("glucose"), loaded.get("temperature"), "a4"
            )
            times.append(time.perf_counter() - t0)
            size = len(pdf)
    finally:
        await pool.close()
    return times[0], statistics.median(times[1:]), size


async def time_chart(url: str, user: uuid.UUID, profile_id: uuid.UUID, end: datetime):
    from api.routes.charts import chart
    from api.routes.profiles import ProfileAccess
    from storage import access
    from storage.pools import open_pool

    pool = await open_pool(url)
    times = []
    points = 0
    try:
        for i in range(51):
            t0 = time.perf_counter()
            grant = await access.profile_grant(pool, user, profile_id)
            assert grant is not None  # the bench user manages every profile it made
            body = await chart(
                ProfileAccess(profile_id, grant), pool, "3d", end - timedelta(minutes=7 * i), None
            )
            body.model_dump_json()
            times.append((time.perf_counter() - t0) * 1000.0)
            points = body.points
    finally:
        await pool.close()
    ms = times[1:]
    return statistics.median(ms), float(np.percentile(ms, 95)), points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profiles", type=int, default=1000)
    parser.add_argument("--days", type=int, default=15)
    args = parser.parse_args()

    import ray

    from cluster.batch_reports import run_batch
    from storage.embedded import throwaway_postgres
    from storage.migrate import migrate

    with throwaway_postgres("vigil-bench-reports-", durable=False) as db:
        out = db.data_dir.parent / "out"
        url = db.url()
        migrate(url)
        end = datetime.now(UTC).replace(second=0, microsecond=0)
        data = populate(url, args.profiles, args.days, end)
        print(f"loaded {data['rows']:,} readings in {data['loaded_s']:.1f} s (binary COPY)")

        pdf_cold, pdf_s, pdf_bytes = asyncio.run(time_pdf(url, data["profiles"][0], args.days, end))
        print(f"one {args.days}-day PDF: cold {pdf_cold:.2f} s, warm median {pdf_s:.2f} s,"
              f" {pdf_bytes:,} bytes")  # fmt: skip

        chart_ms, chart_p95, points = asyncio.run(
            time_chart(url, data["user"], data["profiles"][1], end)
        )
        print(f"3-day chart of a 1-minute sensor (+ the 5-minute one): median {chart_ms:.1f} ms,"
              f" p95 {chart_p95:.1f} ms, {points} points")  # fmt: skip

        ray.init(include_dashboard=False, log_to_driver=False, num_cpus=2)
        try:
            batch_end = end + timedelta(minutes=1)
            first = run_batch(url, out, days=args.days, end=batch_end)
            second = run_batch(url, out, days=args.days, end=batch_end)
        finally:
            ray.shutdown()
        print(f"batch: {first.profiles} profiles in {first.seconds:.1f} s"
              f" ({first.profiles_per_s:.1f}/s, cold workers); re-run {second.seconds:.1f} s"
              f" ({second.profiles_per_s:.1f}/s)")  # fmt: skip
    print(f"load average (1/5/15 min) at the end: {os.getloadavg()}")
    print(f"pdf_s: {pdf_s:.2f}")
    print(f"batch_profiles_per_s: {first.profiles_per_s:.1f}")
    print(f"chart_3d_ms: {chart_ms:.1f}")


if __name__ == "__main__":
    main()
