"""The Ray Serve deployment that hosts the FastAPI app.

Its replica count comes from the Serve config (``cluster/serve.yaml``: ``autoscaling_config``),
or is pinned with ``num_replicas``.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from api.app import create_app
from api.config import ApiConfig

DEPLOYMENT_NAME = "VigilApi"
# JSON lines, as every Vigil process writes them (cluster.stack configures Ray's workers).
LOGGING = {"encoding": "JSON", "enable_access_log": False, "log_level": "INFO"}


def build_application(
    config: ApiConfig,
    num_replicas: int | None = 1,
    options: dict[str, Any] | None = None,
    max_replicas_per_node: int | None = None,
) -> Application:
    """The Serve application, each replica building the app from ``config``.

    ``options`` are Serve deployment options (those of the Serve config); ``num_replicas``,
    when given, pins the replica count and replaces any ``autoscaling_config`` there. On a
    cluster ``max_replicas_per_node=1`` keeps losing one node from losing every replica.
    """

    def build_app() -> FastAPI:
        return create_app(config, serve_sets_request_id=True, read_listener=True)

    @serve.ingress(build_app)
    class VigilApi:
        """Each replica runs its own FastAPI app, pool and shard router."""

    chosen: dict[str, Any] = {
        # WebSockets (live streams, streaming devices) hold a slot each while open.
        "max_ongoing_requests": 4000,
        "ray_actor_options": {"num_cpus": 0},
        # One access-log line per reading batch costs more than the batch's own work; the
        # app logs one JSON line per upload instead (with its request id).
        "logging_config": LOGGING,
    } | (options or {})
    if max_replicas_per_node is not None:
        chosen["max_replicas_per_node"] = max_replicas_per_node
    if num_replicas is not None:
        chosen.pop("autoscaling_config", None)
        chosen["num_replicas"] = num_replicas
    # Ray types serve.deployment as a decorator factory; called with a class it is the
    # Deployment itself.
    return serve.deployment(VigilApi, name=DEPLOYMENT_NAME, **chosen).bind()  # type: ignore[attr-defined]
