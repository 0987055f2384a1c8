"""Application builder for operators: ``serve deploy cluster/serve.yaml`` on a Ray cluster.

Reads the ``VIGIL_*`` settings (``VIGIL_DATABASE_URL`` is required here: a cluster uses a
real PostgreSQL/TimescaleDB, not the embedded one), applies migrations, makes sure the
shard actors exist, and returns the HTTP API application. ``VIGIL_ENV=prod`` refuses unsafe
settings here as in ``vigil up`` (cluster/environments.py).
"""

from __future__ import annotations

from typing import Any

from ray.serve import Application

from actors.router import start_shards
from api.deployment import build_application
from cluster.environments import check_environment
from cluster.settings import Settings
from storage.migrate import migrate


def build(args: dict[str, Any]) -> Application:
    settings = Settings(**args)
    check_environment(settings)
    if not settings.database_url:
        raise ValueError("set VIGIL_DATABASE_URL (or database_url in the Serve config args)")
    migrate(settings.database_url)
    start_shards(
        settings.shard_count, settings.shard_config(settings.database_url), settings.namespace
    )
    # The Serve config's deployments section (autoscaling_config) applies unless pinned here.
    return build_application(
        settings.api_config(settings.database_url),
        settings.pinned_api_replicas(),
        max_replicas_per_node=settings.replicas_per_node,
    )
