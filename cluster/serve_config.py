"""The one Serve config (``cluster/serve.yaml``), read the same way by ``vigil up`` and checked
against what Kubernetes deploys.

``serve deploy`` applies the file's ``deployments`` overrides itself; ``vigil up`` runs the app
with ``serve.run``, which does not read a config file, so it applies the same VigilApi options
from here. Keeping one file means the replica autoscaling tested locally is the one a cluster
runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

from api.deployment import DEPLOYMENT_NAME

SERVE_CONFIG = Path(__file__).with_name("serve.yaml")
APP_NAME = "vigil"


def load(path: Path = SERVE_CONFIG) -> ServeDeploySchema:
    """The config, validated by Ray's own schema (an unknown field is an error here)."""
    return ServeDeploySchema.model_validate(yaml.safe_load(path.read_text()))


def vigil_application(config: ServeDeploySchema) -> ServeApplicationSchema:
    for application in config.applications:
        if application.name == APP_NAME:
            return application
    raise ValueError(f"the Serve config has no application named {APP_NAME!r}")


def api_options(config: ServeDeploySchema, alive_nodes: int) -> dict[str, Any]:
    """The VigilApi deployment options of the config, fitted to ``alive_nodes``.

    ``min_replicas`` (and ``initial_replicas``) are capped at the number of alive nodes: the
    floor of two replicas is there to survive a node's loss, which one machine cannot.
    """
    for deployment in vigil_application(config).deployments:
        if deployment.name == DEPLOYMENT_NAME:
            options = deployment.model_dump(exclude_unset=True, exclude={"name"})
            break
    else:
        return {}
    autoscaling = options.get("autoscaling_config")
    if autoscaling:
        for key in ("min_replicas", "initial_replicas"):
            if key in autoscaling:
                autoscaling[key] = min(autoscaling[key], max(alive_nodes, 1))
    return options
