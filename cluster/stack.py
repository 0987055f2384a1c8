"""The whole system on one machine (or joined to a Ray cluster): database, Ray, shards, Serve."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass

import httpx
import psycopg
import ray
from ray import serve

from actors.router import start_shards, stop_shards
from api.deployment import build_application
from cluster.settings import Settings
from storage.embedded import EmbeddedPostgres, free_port
from storage.migrate import migrate
from storage.shard_layouts import active_layout_sync

log = logging.getLogger(__name__)
APP_NAME = "vigil"
# Ingress timeouts, shorter than clients' (30 s in the simulator and gateway) so a request
# stuck on a lost replica ends with a status, not a hang: connecting to a replica (a connect
# taking seconds means its node is gone; HAProxy then redispatches to another replica), and
# the server's silence (an inactivity limit, longer than the live streams' 20 s pings, so
# streams stay open).
INGRESS_CONNECT_TIMEOUT_S = 2
INGRESS_SERVER_TIMEOUT_S = 25


@dataclass
class Stack:
    settings: Settings
    database_url: str
    embedded: EmbeddedPostgres | None
    started_ray: bool

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
            try:  # `vigil shards scale` may have changed the count since the start
                count = with_recorded_shard_count(self.settings, self.database_url).shard_count
            except psycopg.Error:
                count = self.settings.shard_count
            stop_shards(max(count, self.settings.shard_count), self.settings.namespace)
            if self.started_ray:
                ray.shutdown()
        if self.embedded is not None:
            self.embedded.stop()


def embedded_database(settings: Settings) -> EmbeddedPostgres:
    return EmbeddedPostgres(settings.data_dir / "postgres", port=settings.db_port)


def database_url(settings: Settings) -> str:
    """The configured database URL, or the embedded server's (without starting it)."""
    return settings.database_url or embedded_database(settings).url()


def start_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL, starting the embedded PostgreSQL when none is configured."""
    if settings.database_url:
        return settings.database_url, None
    settings.require_cluster_database()
    db = embedded_database(settings)
    db.start()
    return db.url(), db


def start_stack(settings: Settings, *, database_url: str | None = None) -> Stack:
    embedded = None
    if database_url is None:
        database_url, embedded = start_database(settings)
    migrate(database_url)
    settings = with_recorded_shard_count(settings, database_url)
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
            os.environ.setdefault(
                "RAY_SERVE_HAPROXY_TIMEOUT_CONNECT_S", str(INGRESS_CONNECT_TIMEOUT_S)
            )
            os.environ.setdefault(
                "RAY_SERVE_HAPROXY_TIMEOUT_SERVER_S", str(INGRESS_SERVER_TIMEOUT_S)
            )
        ray.init(
            address=settings.ray_address,
            namespace=settings.namespace,
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=True,
            logging_level=logging.WARNING,
        )
    start_shards(settings.shard_count, settings.shard_config(database_url), settings.namespace)
    serve.start(
        http_options={
            "host": settings.bind_host,
            "port": settings.http_port,
            "location": settings.proxy_location,
        }
    )
    serve.run(
        build_application(
            settings.api_config(database_url), settings.replicas, settings.replicas_per_node
        ),
        name=APP_NAME,
        route_prefix="/",
    )
    stack = Stack(settings, database_url, embedded, started_ray)
    wait_ready(stack.url)
    return stack


def with_recorded_shard_count(settings: Settings, database_url: str) -> Settings:
    """After ``vigil shards scale`` the recorded layout, not VIGIL_SHARD_COUNT, says how
    many shards there are."""
    with psycopg.connect(database_url) as conn:
        layout = active_layout_sync(conn)
    if layout is None or layout.shard_count == settings.shard_count:
        return settings
    log.warning(
        "VIGIL_SHARD_COUNT is %d but the shards were scaled to %d: using %d",
        settings.shard_count,
        layout.shard_count,
        layout.shard_count,
    )
    return settings.model_copy(update={"shard_count": layout.shard_count})


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
