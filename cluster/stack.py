"""The whole system on one machine (or joined to a Ray cluster): database, Ray, shards, Serve."""

from __future__ import annotations

import logging
import os
import shutil
import time
from dataclasses import dataclass, field

import httpx
import psycopg
import ray
from ray import serve

from actors.balancer import BalancerConfig, start_balancer, stop_balancer
from actors.router import start_notifier, start_shards, stop_shards
from api.deployment import LOGGING, build_application
from api.supervision import notifier_config
from cluster import serve_config
from cluster.db_ops import embedded_database
from cluster.environments import check_environment
from cluster.ingress import haproxy_dir, ingress_env
from cluster.logs import attach_file_log, detach_file_log, record_session
from cluster.settings import Settings
from cluster.worker_setup import setup_worker
from storage.embedded import EmbeddedPostgres, free_port, free_port_block
from storage.migrate import migrate
from storage.shard_layouts import active_layout_sync

log = logging.getLogger(__name__)
APP_NAME = serve_config.APP_NAME
SETUP_HOOK = f"{setup_worker.__module__}.{setup_worker.__name__}"  # in every Ray worker


class ServeOptionsConflict(RuntimeError):
    """Serve already runs on the cluster with HTTP options other than Vigil's."""


# Ingress timeouts, shorter than clients' (30 s in the simulator and gateway) so a request
# stuck on a lost replica ends with a status, not a hang: connecting to a replica (a connect
# taking seconds means its node is gone; HAProxy then redispatches to another replica), and
# the server's silence (an inactivity limit, longer than the live streams' 20 s pings, so
# streams stay open).
INGRESS_CONNECT_TIMEOUT_S = 2
INGRESS_SERVER_TIMEOUT_S = 25
LOCAL_REPLICA_DRAIN_S = 5
# How often Serve's controller runs its control loop (Serve's default: 0.1 s); see start_stack.
CONTROL_LOOP_INTERVAL_S = "0.5"


def haproxy_threads(cpus: int | None = None) -> int:
    """Threads for Serve's HAProxy on a node of ``cpus`` cores (default: this one's): a
    quarter of them, at least one. Serve's default is 4 whatever the node; on a 2-core node
    HAProxy then took 0.047-0.049 ms of CPU per proxied read against 0.028-0.031 with one
    thread (docs/benchmarks.md), and it needs far less CPU per request than the replicas
    behind it (0.2 ms per read), so a quarter of the cores leaves it ample room."""
    if cpus is None:
        cpus = os.cpu_count() or 1  # as the replica count (Settings) counts them
    return max(1, cpus // 4)


HAPROXY_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")
# Serve's fallback proxy: HAProxy's backup server, taking every request while no replica is
# up (startup, a replica replaced or marked down). Ray gives it fixed ports (8500, 9500) and
# binds them with SO_REUSEPORT, so the fallback proxies of two stacks on one host share the
# port and the kernel splits the connections between them: requests reached the other
# stack's database (401 "unknown signing key", a login refused right after its sign-up).
FALLBACK_PROXY_PORTS = ("RAY_SERVE_FALLBACK_PROXY_HTTP_PORT", "RAY_SERVE_FALLBACK_PROXY_GRPC_PORT")
LISTENER_PORTS = HAPROXY_PORTS + FALLBACK_PROXY_PORTS
# The ports Serve gives its replicas to listen on behind HAProxy, one block per protocol.
# Serve's default blocks (30000 and 40000) are the same for every Ray cluster on a machine;
# each Serve controller hands them out alone, so with two clusters on one machine a port a
# stopped replica left can be taken by the other cluster's replica before HAProxy drops it,
# and requests reach the other cluster's database. A stack that starts its own Ray gives
# Serve blocks of its own.
REPLICA_PORT_RANGES = (
    ("RAY_SERVE_DIRECT_INGRESS_MIN_HTTP_PORT", "RAY_SERVE_DIRECT_INGRESS_MAX_HTTP_PORT"),
    ("RAY_SERVE_DIRECT_INGRESS_MIN_GRPC_PORT", "RAY_SERVE_DIRECT_INGRESS_MAX_GRPC_PORT"),
)
REPLICA_PORT_BLOCK = 64  # replicas of a node, and ports Serve quarantines after one stops
# Blocks kept free per range: the replicas' read listeners (api.read_listener) take the block
# above the HTTP one.
RESERVED_BLOCKS = {REPLICA_PORT_RANGES[0][0]: 2}
PICKED_PORTS = "VIGIL_PICKED_HAPROXY_PORTS"  # the ones a Vigil stack chose, not an operator


def pick_listener_ports() -> None:
    """The ingress's own listeners (HAProxy's stats and metrics, on loopback: see
    cluster.ingress; Serve's fallback proxy) on free ports, and the replicas' port blocks, so
    stacks run side by side. A port an operator set is kept; one an earlier stack of this
    process, or of the process that started this one, picked is picked anew: that stack
    holds it."""
    picked = set(filter(None, os.environ.get(PICKED_PORTS, "").split(",")))
    inherited = _ports_of(picked)  # the other stack's, maybe not yet listening
    for name in LISTENER_PORTS:
        if name in picked or name not in os.environ:
            os.environ[name] = str(free_port(avoid=inherited | _ports_of(picked - {name})))
            picked.add(name)
    for low, high in REPLICA_PORT_RANGES:
        if low in picked or low not in os.environ:
            avoid = inherited | _ports_of(picked - {low, high})
            first = free_port_block(RESERVED_BLOCKS.get(low, 1) * REPLICA_PORT_BLOCK, avoid=avoid)
            os.environ[low], os.environ[high] = str(first), str(first + REPLICA_PORT_BLOCK - 1)
            picked |= {low, high}
    os.environ[PICKED_PORTS] = ",".join(sorted(picked))


@dataclass
class Stack:
    settings: Settings
    database_url: str
    embedded: EmbeddedPostgres | None
    started_ray: bool
    listener_ports: dict[str, int] = field(default_factory=dict)  # LISTENER_PORTS
    file_log: logging.Handler | None = None

    @property
    def url(self) -> str:
        return self.settings.public_url

    def stop(self) -> None:
        """Stop what ``start_stack`` started, newest first."""
        try:
            serve.delete(APP_NAME)
            if self.started_ray:  # never on a shared cluster: other applications run there
                serve.shutdown()
        except Exception:  # Serve already gone
            log.debug("serve shutdown", exc_info=True)
        if ray.is_initialized():
            try:  # `vigil shards scale` may have changed the count since the start
                count = with_recorded_shard_count(self.settings, self.database_url).shard_count
            except psycopg.Error:
                count = self.settings.shard_count
            stop_balancer(self.settings.namespace)
            stop_shards(max(count, self.settings.shard_count), self.settings.namespace)
            if self.started_ray:
                ray.shutdown()
        if self.embedded is not None:
            self.embedded.stop()
        if self.started_ray:
            shutil.rmtree(haproxy_dir(self.settings.run_dir), ignore_errors=True)
        if self.file_log is not None:
            detach_file_log(self.file_log)


def start_database(settings: Settings) -> tuple[str, EmbeddedPostgres | None]:
    """The database URL, starting the embedded PostgreSQL when none is configured."""
    if settings.database_url:
        return settings.database_url, None
    settings.require_cluster_database()
    db = embedded_database(settings)
    db.start()
    return db.url(), db


def start_stack(
    settings: Settings, *, database_url: str | None = None, demo: bool = False
) -> Stack:
    check_environment(settings, demo=demo)
    embedded = None
    ingress: dict[str, str] = {}  # environment read by Ray's processes as they start
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
            # A stopping replica keeps answering this long so load balancers in front can
            # drop it (Serve's default, 30 s, is for a cloud load balancer). Here the one in
            # front is the node's own HAProxy, reloaded within a second or two; in-flight
            # requests are waited for regardless. Stopping Vigil took 31 s, 4 s with this.
            os.environ.setdefault(
                "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", str(LOCAL_REPLICA_DRAIN_S)
            )
            os.environ.setdefault("RAY_SERVE_HAPROXY_NBTHREAD", str(haproxy_threads()))
            pick_listener_ports()
        # Serve's controller runs its control loop every 0.1 s by default: 54 ms of CPU a
        # second on an idle 2-core stack (itself and the GCS calls it makes), 21 ms at 0.5 s
        # (docs/benchmarks.md). The loop acts on health checks (every 10 s), replica starts
        # and deaths and autoscaling; half a second more to notice one is nothing beside them.
        os.environ.setdefault("RAY_SERVE_CONTROL_LOOP_INTERVAL_S", CONTROL_LOOP_INTERVAL_S)
        # Serve kills a proxy whose readiness check misses 5 s three times; on a busy small
        # machine HAProxy can take longer than that to come up, so give it room.
        os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "30")
        # The ingress sets X-Forwarded-For itself; its admin socket and listeners are private.
        ingress = ingress_env(settings.run_dir, settings.trusted_proxies)
        os.environ.update(ingress)
        if os.environ.get("RAY_AUTH_MODE", "").lower() == "disabled":
            # Ray listens on every interface whatever its node address; its token guards it.
            log.warning("RAY_AUTH_MODE=disabled: anyone who reaches Ray's ports runs code")
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
            runtime_env={"worker_process_setup_hook": SETUP_HOOK},
            # JSON lines from every worker (shards, notifier); Serve's replicas: LOGGING.
            logging_config=ray.LoggingConfig(encoding="JSON", log_level="INFO"),
            _metrics_export_port=settings.metrics_export_port,
        )
        private_ray_token()
    elif settings.haproxy_ingress and os.environ.get("RAY_SERVE_ENABLE_HA_PROXY") != "1":
        log.warning(
            "joined a running Ray cluster: Serve's ingress is whatever its nodes were started"
            " with; set RAY_SERVE_ENABLE_HA_PROXY=1 (see docs/operations.md) on every node"
        )
    record_session(settings.run_dir)
    file_log = attach_file_log(settings.log_dir)
    start_shards(settings.shard_count, settings.shard_config(database_url), settings.namespace)
    keep_shards_balanced(settings, database_url)
    api_config = settings.api_config(database_url)
    # The notifier listens before the API answers, so the alerts of the first uploads are
    # dispatched live (with their request id), not by its catch-up when it starts later.
    ray.get(start_notifier(notifier_config(api_config), settings.namespace).start.remote())
    http_options = {"host": settings.bind_host, "port": settings.http_port}
    check_running_serve(http_options)
    serve.start(
        http_options={**http_options, "location": settings.proxy_location},
        logging_config=LOGGING,
    )
    cpus = int(ray.cluster_resources().get("CPU", 1))
    options = serve_config.api_options(serve_config.load(), len(alive_nodes()), cpus)
    serve.run(
        build_application(
            api_config,
            settings.pinned_api_replicas(),
            options,
            max_replicas_per_node=settings.replicas_per_node,
        ),
        name=APP_NAME,
        route_prefix="/",
    )
    stack = Stack(settings, database_url, embedded, started_ray, file_log=file_log)
    wait_ready(stack.url)
    stack.listener_ports = release_listener_ports()
    for name in ingress:  # Ray's processes have read it; a stack started from here needs its own
        os.environ.pop(name, None)
    return stack


def keep_shards_balanced(settings: Settings, database_url: str) -> None:
    """On a cluster, start the shard balancer (``actors.balancer``; one machine has no
    nodes to join), or stop one an earlier start left running when VIGIL_SHARD_REBALANCE is
    off; a running one is replaced, so it takes the current settings."""
    stop_balancer(settings.namespace)
    if settings.shard_rebalance and settings.on_cluster:
        config = BalancerConfig(
            shard=settings.shard_config(database_url),
            namespace=settings.namespace,
            poll_s=settings.shard_rebalance_poll_s,
            settle_s=settings.shard_rebalance_settle_s,
            cooldown_s=settings.shard_rebalance_cooldown_s,
        )
        start_balancer(config)


def _ports_of(names: set[str]) -> set[int]:
    """The ports the environment variables ``names`` hold, blocks (``..._MIN_...`` to
    ``..._MAX_...``) whole, with the blocks reserved above them (``RESERVED_BLOCKS``)."""
    ports = {int(os.environ[name]) for name in names if name in os.environ}
    for low, high in REPLICA_PORT_RANGES:
        if low in names and high in names:
            first = int(os.environ[low])
            size = RESERVED_BLOCKS.get(low, 1) * (int(os.environ[high]) - first + 1)
            ports |= set(range(first, first + size))
    return ports


def release_listener_ports() -> dict[str, int]:
    """Once the ingress listens, take the ports this stack picked out of the environment, so
    processes started from here (another stack, `ray start`) do not inherit them."""
    picked = set(filter(None, os.environ.pop(PICKED_PORTS, "").split(",")))
    return {name: int(os.environ.pop(name)) for name in picked if name in os.environ}


def private_ray_token() -> None:
    """Ray writes its cluster token readable by everyone (0644); only its user needs it."""
    from ray._private.authentication.authentication_token_setup import _get_default_token_path

    token = _get_default_token_path()
    if token.exists() and token.stat().st_uid == os.getuid():
        token.chmod(0o600)


def alive_nodes() -> list[dict]:
    return [node for node in ray.nodes() if node["Alive"]]


def check_running_serve(http_options: dict[str, object]) -> None:
    """Refuse to deploy onto a Serve that already runs with other HTTP options.

    Serve only logs a warning and keeps its own options, so Vigil would answer on another
    host or port than configured; say which options differ instead.
    """
    from ray.serve.context import _get_global_client

    client = _get_global_client(raise_if_no_controller_running=False)
    if client is None:
        return  # Serve is not running: serve.start applies Vigil's options
    differ = serve_options_differ(client.http_config, http_options)
    if differ:
        detail = ", ".join(f"{k} is {have!r}, Vigil wants {w!r}" for k, (have, w) in differ.items())
        raise ServeOptionsConflict(
            f"Ray Serve already runs on this cluster with other HTTP options ({detail}); set"
            " VIGIL_HTTP_HOST/VIGIL_HTTP_PORT to the running ones, or restart Serve with"
            " Vigil's (`serve shutdown` removes every application on the cluster)."
        )


def serve_options_differ(running: object, wanted: dict[str, object]) -> dict[str, tuple]:
    """Each wanted HTTP option the running Serve does not satisfy: (running, wanted).

    A Serve listening on all interfaces serves any wanted host.
    """
    differ = {}
    for key, want in wanted.items():
        have = getattr(running, key)
        if have != want and not (key == "host" and have == "0.0.0.0"):
            differ[key] = (have, want)
    return differ


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
