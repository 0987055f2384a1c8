"""The whole system on one machine (or joined to a Ray cluster): database, Ray, shards, Serve."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import httpx
import ray
from ray import serve

from actors.router import start_shards, stop_shards
from api.deployment import LOGGING, build_application
from cluster.logs import attach_file_log, detach_file_log, record_session
from cluster.settings import Settings
from storage.embedded import EmbeddedPostgres, free_port
from storage.migrate import migrate

log = logging.getLogger(__name__)
APP_NAME = "vigil"


@dataclass
class Stack:
    settings: Settings
    database_url: str
    embedded: EmbeddedPostgres | None
    started_ray: bool
    file_log: logging.Handler | None = None

    @property
    def url(self) -> str:
        return self.settings.public_url

    def stop(self) -> None:
        """Stop what ``start_stack`` started, newest first."""
        try:
            serve.delete(APP_NAME)
            serve.shutdown()
        except Exception:  # Serve already gone
            log.debug("serve shutdown", exc_info=True)
        if ray.is_initialized():
            stop_shards(self.settings.shard_count, self.settings.namespace)
            if self.started_ray:
                ray.shutdown()
        if self.embedded is not None:
            self.embedded.stop()
        if self.file_log is not None:
            detach_file_log(self.file_log)


def embedded_database(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir / "postgres", port=settings.db_port)


def database_url(settings: Settings) -> str:
    """The configured database URL, or the embedded server's (without starting it)."""
    return settings.database_url or embedded_database(settings).url()


def start_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL, starting the embedded PostgreSQL when none is configured."""
    if settings.database_url:
        return settings.database_url, None
    db = embedded_database(settings)
    db.start()
    return db.url(), db


def start_stack(settings: Settings, *, database_url: str | None = None) -> Stack:
    embedded = None
    if database_url is None:
        database_url, embedded = start_database(settings)
    migrate(database_url)
    started_ray = not ray.is_initialized()
    if started_ray:
        if settings.haproxy_ingress:
            # Read by Serve when it starts, in this process and the Ray workers it spawns.
            os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
            os.environ.setdefault("RAY_SERVE_THROUGHPUT_OPTIMIZED", "1")
            # HAProxy's stats and metrics listeners: free ports, so stacks can run side by side.
            # HAProxy binds these on all interfaces.
            os.environ.setdefault("RAY_SERVE_HAPROXY_STATS_PORT", str(free_port("0.0.0.0")))
            os.environ.setdefault("RAY_SERVE_HAPROXY_METRICS_PORT", str(free_port("0.0.0.0")))
        ray.init(
            address=settings.ray_address,
            namespace=settings.namespace,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=True,
            logging_level=logging.WARNING,
            # JSON lines from every worker (shards, notifier); Serve's replicas: LOGGING.
            logging_config=ray.LoggingConfig(encoding="JSON", log_level="INFO"),
            _metrics_export_port=settings.metrics_export_port,
        )
    record_session(settings.run_dir)
    file_log = attach_file_log(settings.log_dir)
    start_shards(settings.shard_count, settings.shard_config(database_url), settings.namespace)
    serve.start(
        http_options={"host": settings.http_host, "port": settings.http_port},
        logging_config=LOGGING,
    )
    serve.run(
        build_application(settings.api_config(database_url), settings.api_replicas),
        name=APP_NAME,
        route_prefix="/",
    )
    stack = Stack(settings, database_url, embedded, started_ray, file_log)
    wait_ready(stack.url)
    return stack


def wait_ready(url: str, timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{url}/readyz", timeout=5)
            if r.status_code == 200:
                return
            last = r.text
        except httpx.HTTPError as exc:
            last = str(exc)
        time.sleep(0.5)
    raise RuntimeError(f"Vigil did not become ready at {url}: {last}")
