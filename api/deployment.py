"""The Ray Serve deployment that hosts the FastAPI app; scale it with ``num_replicas``."""

from __future__ import annotations

from fastapi import FastAPI
from ray import serve
from ray.serve import Application

from api.app import create_app
from api.config import ApiConfig

DEPLOYMENT_NAME = "VigilApi"
# JSON lines, as every Vigil process writes them (cluster.stack configures Ray's workers).
LOGGING = {"encoding": "JSON", "enable_access_log": False, "log_level": "INFO"}


def build_application(config: ApiConfig, num_replicas: int = 1) -> Application:
    """The Serve application: ``num_replicas`` replicas, each building the app from ``config``."""

    def build_app() -> FastAPI:
        return create_app(config, serve_sets_request_id=True)

    @serve.ingress(build_app)
    class VigilApi:
        """Each replica runs its own FastAPI app, pool and shard router."""

    deployment = serve.deployment(
        VigilApi,
        name=DEPLOYMENT_NAME,
        num_replicas=num_replicas,
        # WebSockets (live streams, streaming devices) hold a slot each while open.
        max_ongoing_requests=4000,
        ray_actor_options={"num_cpus": 0},
        # One access-log line per reading batch costs more than the batch's own work; the
        # app logs one JSON line per upload instead (with its request id).
        logging_config=LOGGING,
    )
    return deployment.bind()
