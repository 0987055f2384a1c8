"""Vigil's Prometheus metrics, recorded with Ray's metrics API.

Every Ray process (shard actors, the notifier, Serve replicas) records through
``ray.util.metrics``; each node's Ray metrics agent serves them all on one port (the node's
``MetricsExportPort``, see ``cluster.observability``), so a node is one scrape target. Ray
prefixes the names with ``ray_`` and adds ``WorkerId``/``NodeAddress`` labels.

The hot path records per batch or per commit, never per reading, and no label carries a
device, profile or person: the label values are small fixed sets (kind, outcome, rule,
channel, shard index). Outside Ray (unit tests, the CLI) recording does nothing.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import time
from typing import Any

import ray

# Seconds: group commits take milliseconds; alert paths are held to one second.
_COMMIT_BUCKETS = [0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
_ALERT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0]

# name -> (type, description, label keys, histogram buckets)
_DEFINITIONS: dict[str, tuple[str, str, tuple[str, ...], list[float] | None]] = {
    "vigil_readings_total": (
        "counter",
        "Readings handled by the shards, by sensor kind and outcome (accepted, duplicate,"
        " rejected)",
        ("kind", "outcome"),
        None,
    ),
    "vigil_commit_seconds": (
        "histogram",
        "Duration of one group commit of the write buffer",
        ("shard",),
        _COMMIT_BUCKETS,
    ),
    "vigil_write_buffer_rows": (
        "gauge",
        "Rows waiting in a shard's write buffer for the database",
        ("shard",),
        None,
    ),
    "vigil_backpressure_total": (
        "counter",
        "Ingest batches answered 503 (buffer full, commit timeout, database down, shard"
        " unreachable)",
        ("reason",),
        None,
    ),
    "vigil_device_actors": ("gauge", "Device actors hosted by a shard", ("shard",), None),
    "vigil_shard_start_time_seconds": (
        "gauge",
        "When a shard process started (unix s); one series per process, so several within"
        " a window mean restarts",
        ("shard",),
        None,
    ),
    "vigil_read_request_seconds": (
        "histogram",
        "Requests answered by the replicas' read listeners (the polled reads, which HAProxy"
        " does not log and Serve's serve_num_http_requests does not count), by route and"
        " status code; _count is the number of requests",
        ("route", "status_code"),
        _COMMIT_BUCKETS,
    ),
    "vigil_alerts_fired_total": ("counter", "Alerts fired, by rule", ("rule",), None),
    "vigil_alert_fire_seconds": (
        "histogram",
        "Reading received by the API -> its alert committed",
        ("rule",),
        _ALERT_BUCKETS,
    ),
    "vigil_alert_delivery_seconds": (
        "histogram",
        "Alert fired -> delivered, by channel",
        ("channel",),
        _ALERT_BUCKETS,
    ),
    "vigil_delivery_failures_total": (
        "counter",
        "Alert deliveries that failed for good, by channel",
        ("channel",),
        None,
    ),
    "vigil_delivery_retries_total": (
        "counter",
        "Alert delivery attempts that will be retried, by channel",
        ("channel",),
        None,
    ),
    "vigil_stream_subscribers": (
        "gauge",
        "Live-stream subscribers (WebSocket and SSE) connected to an API replica",
        (),
        None,
    ),
    "vigil_db_pool_connections": (
        "gauge",
        "An API replica's database pool: open (size) and in use",
        ("state",),
        None,
    ),
    "vigil_report_jobs_total": (
        "counter",
        "Report jobs, by kind (pdf, batch) and outcome (ok, failed)",
        ("kind", "outcome"),
        None,
    ),
    "vigil_db_replication_lag_seconds": (
        "gauge",
        "Replay lag of the slowest streaming standby, from pg_stat_replication (0: none)",
        (),
        None,
    ),
    "vigil_db_standbys": ("gauge", "Standbys streaming from the primary", (), None),
    "vigil_backup_last_success_timestamp_seconds": (
        "gauge",
        "When the last successful base backup finished (unix s)",
        (),
        None,
    ),
}


@functools.cache
def _metric(name: str) -> Any:
    from ray.util import metrics

    kind, description, tags, buckets = _DEFINITIONS[name]
    if kind == "counter":
        return metrics.Counter(name, description, tag_keys=tags)
    if kind == "gauge":
        return metrics.Gauge(name, description, tag_keys=tags)
    assert buckets is not None, f"histogram {name} needs buckets"
    return metrics.Histogram(name, description, boundaries=buckets, tag_keys=tags)


def _enabled() -> bool:
    return ray.is_initialized()


def inc(name: str, value: float = 1.0, **tags: str) -> None:
    """Add to a counter (no-op when ``value`` is 0 or outside Ray)."""
    if value and _enabled():
        _metric(name).inc(value, tags=tags or None)


def set_gauge(name: str, value: float, **tags: str) -> None:
    if _enabled():
        _metric(name).set(value, tags=tags or None)


def observe(name: str, seconds: float, **tags: str) -> None:
    if _enabled():
        _metric(name).observe(max(seconds, 0.0), tags=tags or None)


# Readings counted since the last update of ``vigil_readings_total``, by (kind, outcome):
# a shard answers thousands of one-reading batches a second, and a Ray counter update costs
# about as much as a small batch's own bookkeeping, so they are added up and sent at most
# every READINGS_FLUSH_S (Prometheus scrapes every 15 s or so).
_readings_pending: collections.Counter[tuple[str, str]] = collections.Counter()
_readings_flush: asyncio.TimerHandle | None = None
READINGS_FLUSH_S = 1.0


def readings(kind: str, accepted: int = 0, duplicates: int = 0, rejected: int = 0) -> None:
    """One batch's outcome, in ``vigil_readings_total`` within ``READINGS_FLUSH_S`` (at
    once outside an event loop)."""
    global _readings_flush
    for outcome, n in (("accepted", accepted), ("duplicate", duplicates), ("rejected", rejected)):
        if n:
            _readings_pending[kind, outcome] += n
    if _readings_flush is not None:
        return
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        flush_readings()
        return
    _readings_flush = loop.call_later(READINGS_FLUSH_S, flush_readings)


def flush_readings() -> None:
    """Send the readings counted so far to ``vigil_readings_total``."""
    global _readings_flush
    _readings_flush = None
    for (kind, outcome), n in _readings_pending.items():
        inc("vigil_readings_total", n, kind=kind, outcome=outcome)
    _readings_pending.clear()


def shard_started(index: int) -> None:
    set_gauge("vigil_shard_start_time_seconds", time.time(), shard=str(index))


def names() -> list[str]:
    """Every metric Vigil defines (as recorded; Prometheus sees them prefixed ``ray_``)."""
    return sorted(_DEFINITIONS)
