"""The HTTP ingress Vigil starts (Ray Serve's HAProxy), made safe to face clients.

Ray Serve renders HAProxy's configuration from a template inside its ``HAProxyManager``
actor. As shipped, that configuration (a) passes the client's own ``X-Forwarded-For`` to
the replicas, whose uvicorn trusts it from a loopback peer, so a client chooses the
address Vigil audits and locks out; (b) opens the admin socket to everyone (mode 666,
level admin); (c) binds the stats page and the Prometheus exporter on all interfaces.

Ray offers no setting for any of these, so Vigil edits the template text in every Ray
worker it starts (``worker_process_setup_hook``, run before the worker imports Serve):

- the HTTP frontend sets ``X-Forwarded-For`` to the connecting peer, overwriting what the
  client sent, unless the peer is one of ``trusted_proxies`` (a load balancer in front of
  Vigil), whose header it extends; ``X-Forwarded-Proto`` likewise;
- the admin socket is ``mode 600``, in a directory of the stack's own (``0700``, not the
  shared ``/tmp/haproxy-serve``);
- stats and metrics listen on ``VIGIL_INGRESS_ADMIN_HOST`` (default ``127.0.0.1``);
- readings uploads and reads and the two WebSockets are marked for Serve not to watch
  for a client disconnect;
- the two polled reads go to Vigil's read listener in each replica (``api.read_listener``)
  while one is up, unless that is turned off.

Each edit names the exact text it replaces; if a Ray upgrade changes the template, the
worker fails loudly instead of serving an unhardened ingress.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from api.read_listener import READ_PATHS

TRUSTED_ENV = "VIGIL_TRUSTED_PROXIES"
ADMIN_HOST_ENV = "VIGIL_INGRESS_ADMIN_HOST"
LOOPBACK = ("127.0.0.1", "::1")
# Requests Serve does not watch for a client disconnect (see ``_edits``): readings uploads
# and polled reads, the ingest WebSocket and the live stream.
UNWATCHED_PATHS = "^/v1/(devices/[^/]+/(latest|readings|readings/stream)|stream)$"
# What goes to the replicas' read listeners (GET only): the two polled reads.
READS_BACKEND = "vigil_reads"


class TemplateChanged(RuntimeError):
    """Ray's HAProxy template no longer contains a line Vigil hardens."""


def _read_edits(app_name: str, offset: int) -> list[tuple[str, str]]:
    """The reads to the read listeners: a frontend rule, and their backend, whose servers
    are the app's replicas at Serve's port plus ``offset``, checked on Vigil's ``/healthz``
    as Serve checks its own (its ``default-server`` line, and marked down after connection
    errors as its own are)."""
    routing = (
        "    # Static routing based on path prefixes in decreasing length then alphabetical order\n"
    )
    routed = f"METH_GET vigil_read {{ nbsrv({READS_BACKEND}) ge 1 }}"
    rule = [
        "    # Vigil: the polled reads to the replicas' read listeners, while one is up;",
        "    # not logged here (the listeners count them: vigil_read_request_seconds)",
        f"    acl vigil_read path_reg {READ_PATHS}",
        f"    http-request set-log-level silent if {routed}",
        f"    use_backend {READS_BACKEND} if {routed}",
    ]
    backend = [
        f"backend {READS_BACKEND}",
        "    log global",
        "    http-reuse always",
        "    option httpchk GET /healthz",
        "    http-check expect status 200",
        "{%- for item in backends_with_health_config %}",
        f"{{%- if item.backend.app_name == '{app_name}' %}}",
        "    {{ item.health_config.default_server_directive }}",
        "{%- for server in item.backend.servers %}",
        "    server {{ server.name }} {{ server.host }}:{{ server.port + "
        f"{offset}"
        " }} check{% if config.observe_mark_down_enabled %} observe layer4 error-limit"
        " {{ config.observe_error_limit }} on-error mark-down{% endif %}",
        "{%- endfor %}",
        "{%- endif %}",
        "{%- endfor %}",
    ]
    default = "\nbackend default_backend\n"
    return [
        (routing, "\n".join(rule) + "\n" + routing),
        (default, "\n" + "\n".join(backend) + default),
    ]


def _edits(trusted: list[str], admin_host: str) -> list[tuple[str, str]]:
    """(shipped text, hardened text) pairs of Ray Serve's HAProxy template."""
    trust = " ".join(trusted)
    forwarded = [
        "    # Vigil: the client address is the peer's; only trusted proxies' headers are kept",
        "    http-request set-header X-Forwarded-Proto http if !{ ssl_fc }",
        "    http-request set-header X-Forwarded-Proto https if { ssl_fc }",
    ]
    if trusted:
        forwarded += [
            f"    acl vigil_trusted_proxy src {trust}",
            "    http-request set-header X-Forwarded-For %[src] if !vigil_trusted_proxy",
            "    http-request add-header X-Forwarded-For %[src] if vigil_trusted_proxy",
        ]
    else:
        forwarded.append("    http-request set-header X-Forwarded-For %[src]")
    forwarded += [
        # Readings uploads and reads run to their end even if the client leaves (a batch
        # sent to its shard is stored anyway), and the two WebSockets (the ingest stream,
        # the live stream) read their socket themselves and end on its close, so Serve
        # need not watch them for a disconnect: a task and a receive proxy per request,
        # and for a WebSocket a queue hop for every message. A client's own header is
        # dropped.
        "    http-request del-header X-Request-Disconnect-Disabled",
        "    http-request set-header X-Request-Disconnect-Disabled ?1"
        f" if {{ path_reg {UNWATCHED_PATHS} }}",
    ]
    frontend = "    bind {{ config.frontend_host }}:{{ config.frontend_port }}\n"
    metrics, stats = "{{ config.metrics_port }}", "{{ config.stats_port }}"
    return [
        (
            "stats socket {{ config.socket_path }} mode 666 level admin",
            "stats socket {{ config.socket_path }} mode 600 level admin",
        ),
        (f"    bind :{metrics}\n", f"    bind {admin_host}:{metrics}\n"),
        (f"  bind *:{stats}\n", f"  bind {admin_host}:{stats}\n"),
        (frontend, frontend + "\n".join(forwarded) + "\n"),
    ]


def hardened_template(
    template: str, trusted: list[str], admin_host: str, reads: tuple[str, int] | None = None
) -> str:
    """Ray's HAProxy template with Vigil's edits; TemplateChanged if one does not apply.
    ``reads``: the app's name and the read listeners' port offset, to route reads there."""
    edits = _edits(trusted, admin_host) + (_read_edits(*reads) if reads else [])
    for shipped, hardened in edits:
        if template.count(shipped) != 1:
            raise TemplateChanged(f"Ray Serve's HAProxy template changed near {shipped!r}")
        template = template.replace(shipped, hardened)
    return template


def harden_haproxy() -> None:
    """Ray ``worker_process_setup_hook``: harden the template before Serve imports it."""
    from ray.serve._private import haproxy_templates

    if getattr(haproxy_templates, "VIGIL_HARDENED", False):
        return
    trusted = json.loads(os.environ.get(TRUSTED_ENV) or "[]")
    admin_host = os.environ.get(ADMIN_HOST_ENV, "127.0.0.1")
    from api import read_listener
    from cluster.serve_config import APP_NAME

    reads = (APP_NAME, read_listener.port_offset()) if read_listener.enabled() else None
    shipped = haproxy_templates.HAPROXY_CONFIG_TEMPLATE
    haproxy_templates.HAPROXY_CONFIG_TEMPLATE = hardened_template(
        shipped, trusted, admin_host, reads
    )
    haproxy_templates.VIGIL_SHIPPED = shipped  # type: ignore[attr-defined]
    haproxy_templates.VIGIL_HARDENED = True  # type: ignore[attr-defined]


def forwarded_allow_ips(trusted: list[str]) -> str:
    """uvicorn's ``FORWARDED_ALLOW_IPS`` for the replicas: the local ingress (loopback) and
    the configured proxies; their ``X-Forwarded-For`` names the client."""
    return ",".join([*LOOPBACK, *trusted])


def private_dir(path: Path) -> Path:
    """A directory only the service user may enter (0700), created if missing; refused if
    someone else owns it (planted in a shared place such as /tmp)."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    if path.stat().st_uid != os.getuid():
        raise PermissionError(f"{path} belongs to another user")
    path.chmod(0o700)
    return path


def haproxy_dir(run_dir: Path) -> Path:
    """HAProxy's private directory for the stack of ``run_dir``. Short on purpose: Serve
    adds the 56-character node id, and HAProxy refuses socket paths over 97 characters."""
    digest = hashlib.sha256(str(run_dir.resolve()).encode()).hexdigest()[:10]
    return private_dir(Path("/tmp") / f"vigil-{digest}")


def ingress_env(run_dir: Path, trusted: list[str]) -> dict[str, str]:
    """Environment for Serve's HAProxy and the replicas' uvicorn, read when Ray starts
    (this process and every worker it spawns): HAProxy's files in a private directory of
    this stack (not the shared ``/tmp/haproxy-serve``), and whom to trust."""
    haproxy = haproxy_dir(run_dir)
    return {
        "RAY_SERVE_HAPROXY_CONFIG_FILE_LOC": str(haproxy / "haproxy.cfg"),
        "RAY_SERVE_HAPROXY_SOCKET_PATH": str(haproxy / "admin.sock"),
        "RAY_SERVE_HAPROXY_SERVER_STATE_BASE": str(haproxy),
        "RAY_SERVE_HAPROXY_SERVER_STATE_FILE": str(haproxy / "server-state"),
        "RAY_SERVE_HAPROXY_METRICS_SOCKET_PATH": str(haproxy / "metrics.sock"),
        TRUSTED_ENV: json.dumps(trusted),  # as the setting itself reads it
        "FORWARDED_ALLOW_IPS": forwarded_allow_ips(trusted),
    }
