"""The one Serve config (``cluster/serve.yaml``), read the same way by ``vigil up`` and checked
against what Kubernetes deploys.

``serve deploy`` applies the file's ``deployments`` overrides itself; ``vigil up`` runs the app
with ``serve.run``, which does not read a config file, so it applies the same VigilApi options
from here. Keeping one file means the replica autoscaling tested locally is the one a cluster
runs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import yaml  # type: ignore[import-untyped,unused-ignore]  # stubs are not a dependency
from pydantic import BaseModel
from ray.serve.config import AutoscalingConfig
from ray.serve.schema import ServeApplicationSchema, ServeDeploySchema

from api.deployment import DEPLOYMENT_NAME

SERVE_CONFIG = Path(__file__).with_name("serve.yaml")
APP_NAME = "vigil"


def load(path: Path = SERVE_CONFIG) -> ServeDeploySchema:
    """The config, validated by Ray's own schema; an unknown (misspelt) field, which that
    schema silently drops, is an error here."""
    data = yaml.safe_load(path.read_text())
    unknown = unknown_fields(data, ServeDeploySchema)
    if unknown:
        raise ValueError(f"{path}: unknown Serve config fields: {', '.join(unknown)}")
    config = ServeDeploySchema.model_validate(data)
    for application in config.applications:
        for deployment in application.deployments:
            if isinstance(deployment.autoscaling_config, dict):  # Ray checks it only at deploy
                AutoscalingConfig.model_validate(deployment.autoscaling_config)
    return config


def unknown_fields(data: Any, model: type[BaseModel], where: str = "") -> list[str]:
    """Dotted paths of the keys of ``data`` that ``model`` (recursively) does not declare."""
    if isinstance(data, list):
        return [
            u for i, item in enumerate(data) for u in unknown_fields(item, model, f"{where}[{i}]")
        ]
    if not isinstance(data, dict):
        return []
    out = []
    for key, value in data.items():
        path = f"{where}.{key}" if where else key
        field = model.model_fields.get(key)
        if field is None:
            out.append(path)
            continue
        nested = _models_in(field.annotation)
        if len(nested) == 1:
            out += unknown_fields(value, nested[0], path)
    return out


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def vigil_application(config: ServeDeploySchema) -> ServeApplicationSchema:
    for application in config.applications:
        if application.name == APP_NAME:
            return application
    raise ValueError(f"the Serve config has no application named {APP_NAME!r}")


def api_options(
    config: ServeDeploySchema, alive_nodes: int, cpus: int | None = None
) -> dict[str, Any]:
    """The VigilApi deployment options of the config, fitted to the cluster.

    ``min_replicas`` (and ``initial_replicas``) are capped at the number of alive nodes: the
    floor of two replicas is there to survive a node's loss, which one machine cannot.
    ``max_replicas`` is capped at the cluster's ``cpus`` when given: replicas beyond the
    cores only compete with the shards for them.
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
        if cpus is not None and "max_replicas" in autoscaling:
            floor = autoscaling.get("min_replicas", 1)
            autoscaling["max_replicas"] = max(min(autoscaling["max_replicas"], cpus), floor)
    return options
