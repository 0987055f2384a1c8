"""Batch report jobs: the report metrics of every profile (or a selection) as Ray tasks over
chunks of profiles, each task reading its chunk from the database with one binary COPY per
sensor kind. Writes one Parquet table (a row per profile) and, optionally, each PDF.

Idempotent: the window is fixed by ``end`` (default: the last UTC midnight), file names
depend only on the window, rows are sorted by profile id, the PDFs carry no creation time,
and every file is written to a temporary name and renamed over the old one (atomic)."""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from uuid import UUID

import pyarrow as pa
import pyarrow.parquet as pq
import ray

from actors import metrics

if TYPE_CHECKING:
    from storage.history import ProfileInfo

DEFAULT_CHUNK = 50
VARIABILITY_COLUMNS = ("mage_mgdl", "conga24_mgdl", "modd_mgdl", "lbgi", "hbgi", "adrr",
                       "j_index", "mad_mgdl", "iqr_mgdl", "ea1c_pct")  # fmt: skip

SCHEMA = pa.schema(
    [
        ("profile_id", pa.string()),
        ("profile_name", pa.string()),
        ("timezone", pa.string()),
        ("window_start", pa.timestamp("us", tz="UTC")),
        ("window_end", pa.timestamp("us", tz="UTC")),
        ("days", pa.int32()),
        ("glucose_interval_s", pa.float64()),
        ("readings", pa.int64()),
        ("expected_readings", pa.int64()),
        ("data_sufficiency_pct", pa.float64()),
        ("sufficient", pa.bool_()),
        ("mean_mgdl", pa.float64()),
        ("sd_mgdl", pa.float64()),
        ("cv_pct", pa.float64()),
        ("gmi_pct", pa.float64()),
        ("min_mgdl", pa.float64()),
        ("max_mgdl", pa.float64()),
        ("below_54_pct", pa.float64()),
        ("from_54_below_70_pct", pa.float64()),
        ("in_70_180_pct", pa.float64()),
        ("above_180_to_250_pct", pa.float64()),
        ("above_250_pct", pa.float64()),
        ("below_70_pct", pa.float64()),
        ("above_180_pct", pa.float64()),
        ("in_70_140_pct", pa.float64()),
        ("hypo_episodes_below_54", pa.int32()),
        ("hypo_episodes_below_70", pa.int32()),
        ("hyper_episodes_above_180", pa.int32()),
        ("hyper_episodes_above_250", pa.int32()),
        ("previous_mean_mgdl", pa.float64()),
        ("previous_in_70_180_pct", pa.float64()),
        ("change_mean_mgdl", pa.float64()),
        ("change_in_70_180_pct", pa.float64()),
        ("temperature_readings", pa.int64()),
        ("temperature_mean_c", pa.float64()),
        ("temperature_max_c", pa.float64()),
        ("time_in_fever_pct", pa.float64()),
        ("fever_episodes", pa.int32()),
        ("pdf", pa.string()),
        # Variability and risk of the window (iglu's definitions; null without enough data).
        ("gri", pa.float64()),
        ("gri_hypo_component", pa.float64()),
        ("gri_hyper_component", pa.float64()),
        ("gri_zone", pa.string()),
        *((name, pa.float64()) for name in VARIABILITY_COLUMNS),
    ]
)


@dataclass(frozen=True, slots=True)
class BatchResult:
    parquet: Path
    profiles: int
    pdfs: int
    seconds: float

    @property
    def profiles_per_s(self) -> float:
        return self.profiles / self.seconds if self.seconds > 0 else float("inf")


def default_end(now: datetime | None = None) -> datetime:
    """The last UTC midnight: re-running on the same day reports on the same window."""
    now = now or datetime.now(UTC)
    return now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def window_tag(days: int, end: datetime) -> str:
    return f"{days}d_{end.astimezone(UTC):%Y%m%dT%H%MZ}"


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file in the same directory + rename."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _row(report, pdf_name: str | None) -> dict:
    g = report.glucose
    cur = g.current if g else None
    r = cur.ranges if cur else None
    t = report.temperature.current if report.temperature else None
    row = {
        "profile_id": str(report.profile.id),
        "profile_name": report.profile.name,
        "timezone": report.profile.timezone,
        "window_start": report.start,
        "window_end": report.end,
        "days": report.days,
        "glucose_interval_s": cur.interval_s if cur else None,
        "sufficient": report.sufficient,
        "previous_mean_mgdl": g.previous.mean_mgdl if g else None,
        "previous_in_70_180_pct": g.previous.ranges.in_70_180_pct if g else None,
        "change_mean_mgdl": g.change.get("mean_mgdl") if g else None,
        "change_in_70_180_pct": g.change.get("in_70_180_pct") if g else None,
        "temperature_readings": t.readings if t else None,
        "temperature_mean_c": t.mean_c if t else None,
        "temperature_max_c": t.max_c if t else None,
        "time_in_fever_pct": t.time_in_fever_pct if t else None,
        "fever_episodes": len(t.fever_episodes) if t else None,
        "pdf": pdf_name,
    }
    for name in ("readings", "expected_readings", "data_sufficiency_pct", "mean_mgdl",
                 "sd_mgdl", "cv_pct", "gmi_pct", "min_mgdl", "max_mgdl"):  # fmt: skip
        row[name] = getattr(cur, name) if cur else None
    for name in ("below_54_pct", "from_54_below_70_pct", "in_70_180_pct",
                 "above_180_to_250_pct", "above_250_pct", "below_70_pct", "above_180_pct",
                 "in_70_140_pct"):  # fmt: skip
        row[name] = getattr(r, name) if r else None
    for name in ("hypo_episodes_below_54", "hypo_episodes_below_70",
                 "hyper_episodes_above_180", "hyper_episodes_above_250"):  # fmt: skip
        row[name] = len(getattr(cur, name)) if cur else None
    v = g.variability if g else None
    row["gri"] = v.gri.gri if v else None
    row["gri_hypo_component"] = v.gri.hypo_component if v else None
    row["gri_hyper_component"] = v.gri.hyper_component if v else None
    row["gri_zone"] = v.gri.zone if v else None
    for name in VARIABILITY_COLUMNS:
        row[name] = getattr(v, name) if v else None
    return row


BATCH_NICE = 10  # the niceness of batch report tasks


def lower_priority() -> None:
    """Run this whole process (Ray reuses the worker) as idle work: every thread (on Linux
    niceness and scheduling policy belong to each thread, and a Ray worker has many:
    gRPC, object transfer, numpy's) at BATCH_NICE and under SCHED_IDLE, which gets a core
    only when nothing else on the node wants it. Where SCHED_IDLE cannot be set, the
    niceness still holds."""
    for tid in _threads():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            if os.getpriority(os.PRIO_PROCESS, tid) < BATCH_NICE:
                os.setpriority(os.PRIO_PROCESS, tid, BATCH_NICE)
            if os.sched_getscheduler(tid) != os.SCHED_IDLE:
                os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))


def _threads() -> list[int]:
    """This process's thread ids (just the process itself where /proc has no task list)."""
    try:
        return [int(t) for t in os.listdir("/proc/self/task")]
    except OSError:
        return [0]


def metrics_for_chunk(
    database_url: str,
    infos: list[ProfileInfo],
    days: int,
    end: datetime,
    pdf_dir: str | None,
) -> list[dict]:
    """Rows of a chunk of profiles. Runs in a Ray task, at a lower CPU priority: where a
    batch node also runs anything else, that comes first."""
    lower_priority()
    import psycopg

    from api.reporting.events import event_out
    from api.reporting.report import ProfileRef, build_report
    from api.reporting.sections import KindSeries
    from storage import events as events_store
    from storage.history import bulk_series

    start = end - timedelta(days=days)
    load_from = start - (end - start)
    ids = [p.id for p in infos]
    rows = []
    with psycopg.connect(database_url) as conn:
        series = {
            kind: bulk_series(conn, ids, kind, load_from, end)
            for kind in ("glucose", "temperature")
        }
        for info in infos:
            loaded = {}
            for kind, interval in (("glucose", info.glucose_interval_s),
                                   ("temperature", info.temperature_interval_s)):  # fmt: skip
                if interval is not None:
                    ts, values = series[kind][info.id]
                    loaded[kind] = KindSeries([], float(interval), ts, values)
            evs = []
            if pdf_dir is not None:
                evs = [
                    event_out(e) for e in events_store.list_events_sync(conn, info.id, start, end)
                ]
            ref = ProfileRef(id=info.id, name=info.name, timezone=info.timezone)
            report = build_report(ref, days, start, end, loaded, evs, generated_at=end)
            pdf_name = None
            if pdf_dir is not None:
                from api.reporting.pdf import render_report_pdf

                pdf = render_report_pdf(
                    report, loaded.get("glucose"), loaded.get("temperature"), "a4"
                )
                pdf_name = f"{info.id}_{window_tag(days, end)}.pdf"
                write_atomic(Path(pdf_dir) / pdf_name, pdf)
            rows.append(_row(report, pdf_name))
    return rows


_remote_chunk = ray.remote(num_cpus=1, max_retries=2)(metrics_for_chunk)


def run_batch(
    database_url: str,
    out_dir: Path,
    *,
    days: int = 15,
    end: datetime | None = None,
    profile_ids: list[UUID] | None = None,
    pdf: bool = False,
    chunk_size: int = DEFAULT_CHUNK,
    on_progress: Callable[[int, int], None] | None = None,
    resources: dict[str, float] | None = None,
) -> BatchResult:
    """Compute the metrics of the window ``[end - days, end)`` for every profile (or
    ``profile_ids``) on the connected Ray cluster; write ``metrics_<days>d_<end>.parquet``
    (and ``pdf/<profile>_<days>d_<end>.pdf``) into ``out_dir``. ``resources``: custom Ray
    resources each task needs, e.g. ``{"batch": 1}`` to run only on nodes started with
    ``--resources '{"batch": N}'`` so batch work cannot take the shards' CPU."""
    import psycopg

    from storage.history import list_profiles

    if not ray.is_initialized():
        raise RuntimeError("connect to Ray first (ray.init)")
    started = time.perf_counter()
    end = (end or default_end()).astimezone(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    pdf_dir = out_dir / "pdf"
    if pdf:
        pdf_dir.mkdir(exist_ok=True)
    with psycopg.connect(database_url) as conn:
        infos = list_profiles(conn, profile_ids)
    if profile_ids is not None:
        missing = set(profile_ids) - {p.id for p in infos}
        if missing:
            raise ValueError(f"unknown profile ids: {', '.join(sorted(map(str, missing)))}")
    chunks = [infos[i : i + chunk_size] for i in range(0, len(infos), chunk_size)]
    task = _remote_chunk.options(resources=resources) if resources else _remote_chunk
    pending = {
        task.remote(database_url, chunk, days, end, str(pdf_dir) if pdf else None): len(chunk)
        for chunk in chunks
    }
    rows: list[dict] = []
    done = 0
    if on_progress:
        on_progress(0, len(infos))
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            rows.extend(ray.get(ref))
            done += pending.pop(ref)
        if on_progress:
            on_progress(done, len(infos))
    rows.sort(key=lambda r: r["profile_id"])
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    parquet = out_dir / f"metrics_{window_tag(days, end)}.parquet"
    write_atomic(parquet, sink.getvalue().to_pybytes())
    metrics.inc("vigil_report_jobs_total", len(rows), kind="batch", outcome="ok")
    return BatchResult(
        parquet, len(rows), sum(1 for r in rows if r["pdf"]), time.perf_counter() - started
    )
