"""The running stack: Serve deployed the VigilApi with the Serve config's autoscaling, and a
second deploy with other HTTP options is refused by name instead of silently ignored."""

from __future__ import annotations

import pytest
import ray
from ray.serve.context import _get_global_client

from api.deployment import DEPLOYMENT_NAME
from cluster import serve_config
from cluster.stack import APP_NAME, ServeOptionsConflict, alive_nodes, check_running_serve


def test_the_api_runs_with_the_serve_config_autoscaling(stack) -> None:
    details = _get_global_client().get_serve_details()
    deployment = details["applications"][APP_NAME]["deployments"][DEPLOYMENT_NAME]
    running = deployment["deployment_config"]["autoscaling_config"]
    cpus = int(ray.cluster_resources()["CPU"])
    wanted = serve_config.api_options(serve_config.load(), len(alive_nodes()), cpus)
    for key, value in wanted["autoscaling_config"].items():
        assert running[key] == value, key
    assert running["min_replicas"] == min(2, len(alive_nodes()))
    assert running["max_replicas"] == max(min(16, cpus), running["min_replicas"])


def test_serve_running_with_another_port_is_refused_by_name(stack) -> None:
    port = stack.settings.http_port
    check_running_serve({"host": stack.settings.bind_host, "port": port})
    with pytest.raises(ServeOptionsConflict, match=f"port is {port}, Vigil wants {port + 1}"):
        check_running_serve({"host": stack.settings.bind_host, "port": port + 1})
