"""The one Serve config: validated by Ray's schema, fitted to the cluster's nodes, and turned
into the VigilApi deployment's options (autoscaling unless a replica count is pinned)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError
from ray.serve.config import HTTPOptions

from api.config import ApiConfig
from api.deployment import build_application
from cluster import serve_config
from cluster.ingress import haproxy_dir
from cluster.settings import Settings
from cluster.stack import CONTROL_LOOP_INTERVAL_S, haproxy_threads, serve_options_differ

ROOT = Path(__file__).resolve().parents[2]

FILE_AUTOSCALING = yaml.safe_load(serve_config.SERVE_CONFIG.read_text())["applications"][0][
    "deployments"
][0]["autoscaling_config"]


def test_the_file_autoscales_the_api_with_a_floor_of_two() -> None:
    options = serve_config.api_options(serve_config.load(), alive_nodes=3)
    assert options["autoscaling_config"] == FILE_AUTOSCALING
    assert FILE_AUTOSCALING["min_replicas"] == 2
    assert FILE_AUTOSCALING["max_replicas"] > FILE_AUTOSCALING["min_replicas"]


@pytest.mark.parametrize(("nodes", "floor"), [(0, 1), (1, 1), (2, 2), (5, 2)])
def test_the_floor_is_capped_at_the_alive_nodes(nodes: int, floor: int) -> None:
    options = serve_config.api_options(serve_config.load(), alive_nodes=nodes)
    assert options["autoscaling_config"]["min_replicas"] == floor
    assert options["autoscaling_config"]["max_replicas"] == FILE_AUTOSCALING["max_replicas"]


@pytest.mark.parametrize(
    ("nodes", "cpus", "ceiling"), [(1, 2, 2), (1, 1, 1), (3, 64, 16), (2, 1, 2)]
)
def test_the_ceiling_is_capped_at_the_cluster_cpus(nodes: int, cpus: int, ceiling: int) -> None:
    options = serve_config.api_options(serve_config.load(), alive_nodes=nodes, cpus=cpus)
    assert options["autoscaling_config"]["max_replicas"] == ceiling
    assert ceiling >= options["autoscaling_config"]["min_replicas"]


@pytest.mark.parametrize(
    ("field", "typo", "path"),
    [
        ("min_replicas:", "min_replica:", "applications[0].deployments[0].autoscaling_config"),
        ("max_ongoing_requests:", "max_ongoing_request:", "applications[0].deployments[0]"),
        ("route_prefix:", "route_prefx:", "applications[0]"),
        ("proxy_location:", "proxy_locaton:", ""),
    ],
)
def test_an_unknown_field_in_the_file_is_refused(
    tmp_path: Path, field: str, typo: str, path: str
) -> None:
    broken = tmp_path / "serve.yaml"
    broken.write_text(serve_config.SERVE_CONFIG.read_text().replace(field, typo))
    expected = f"{path}.{typo[:-1]}" if path else typo[:-1]
    with pytest.raises(ValueError, match=re.escape(expected)):
        serve_config.load(broken)


def test_a_wrong_type_in_the_file_is_refused(tmp_path: Path) -> None:
    broken = tmp_path / "serve.yaml"
    broken.write_text(
        serve_config.SERVE_CONFIG.read_text().replace("max_replicas: 16", "max_replicas: many")
    )
    with pytest.raises(ValidationError, match="max_replicas"):
        serve_config.load(broken)


def test_a_config_without_vigil_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "serve.yaml"
    other.write_text(serve_config.SERVE_CONFIG.read_text().replace("name: vigil", "name: x"))
    with pytest.raises(ValueError, match="'vigil'"):
        serve_config.api_options(serve_config.load(other), alive_nodes=1)


def test_the_deployment_takes_the_file_options_unless_replicas_are_pinned() -> None:
    config = ApiConfig(database_url="postgresql://vigil@db.internal/vigil")
    options = serve_config.api_options(serve_config.load(), alive_nodes=2)
    scaled = build_application(config, None, options)._bound_deployment._deployment_config
    assert scaled.autoscaling_config.min_replicas == 2
    assert scaled.autoscaling_config.max_replicas == FILE_AUTOSCALING["max_replicas"]
    assert (
        scaled.autoscaling_config.target_ongoing_requests
        == (FILE_AUTOSCALING["target_ongoing_requests"])
    )
    pinned = build_application(config, 3, options)._bound_deployment
    assert pinned._deployment_config.autoscaling_config is None
    assert pinned.num_replicas == 3


def test_api_replicas_pins_only_when_set(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("VIGIL_API_REPLICAS", raising=False)
    assert Settings(data_dir=tmp_path).pinned_api_replicas() is None
    monkeypatch.setenv("VIGIL_API_REPLICAS", "3")
    assert Settings(data_dir=tmp_path).pinned_api_replicas() == 3


def test_running_serve_options_that_differ_are_named() -> None:
    running = HTTPOptions(host="0.0.0.0", port=8000)
    assert serve_options_differ(running, {"host": "127.0.0.1", "port": 8000}) == {}
    assert serve_options_differ(running, {"host": "127.0.0.1", "port": 9000}) == {
        "port": (8000, 9000)
    }
    loopback = HTTPOptions(host="127.0.0.1", port=8000)
    assert serve_options_differ(loopback, {"host": "0.0.0.0", "port": 8000}) == {
        "host": ("127.0.0.1", "0.0.0.0")
    }


def _controller_environments() -> list[dict[str, str]]:
    """The environment of each running Serve controller process."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if b"ServeController" not in (proc / "cmdline").read_bytes():
                continue
            pairs = (proc / "environ").read_bytes().split(b"\0")
        except OSError:  # not a process, or gone meanwhile
            continue
        found.append(dict(p.decode().split("=", 1) for p in pairs if b"=" in p))
    return found


def test_serve_s_controller_loops_every_half_second(stack: object) -> None:
    """The controller's loop at Serve's default (0.1 s) cost 54 ms of CPU a second idle."""
    environments = _controller_environments()
    assert environments, "no Serve controller process found"
    for environment in environments:
        assert environment.get("RAY_SERVE_CONTROL_LOOP_INTERVAL_S") == CONTROL_LOOP_INTERVAL_S
    rayservice = (ROOT / "cluster/deploy/kubernetes/base/rayservice.yaml").read_text()
    assert re.search(
        rf'name: RAY_SERVE_CONTROL_LOOP_INTERVAL_S\n\s+value: "{CONTROL_LOOP_INTERVAL_S}"',
        rayservice,
    )


@pytest.mark.parametrize(("cpus", "threads"), [(1, 1), (2, 1), (4, 1), (8, 2), (16, 4), (64, 16)])
def test_haproxy_takes_a_quarter_of_the_cores_at_least_one(cpus: int, threads: int) -> None:
    assert haproxy_threads(cpus) == threads


def test_the_running_haproxy_has_its_share_of_threads(stack: Any) -> None:
    config = next(haproxy_dir(stack.settings.run_dir).glob("*/haproxy.cfg")).read_text()
    threads = re.search(r"^\s*nbthread (\d+)$", config, re.M)
    assert threads is not None, "no nbthread in HAProxy's config"
    assert int(threads[1]) == haproxy_threads()
    rayservice = (ROOT / "cluster/deploy/kubernetes/base/rayservice.yaml").read_text()
    assert re.search(r'name: RAY_SERVE_HAPROXY_NBTHREAD\n\s+value: "1"', rayservice)
