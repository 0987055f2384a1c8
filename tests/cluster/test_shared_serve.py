"""On a Ray cluster Vigil did not start, stopping Vigil removes only Vigil's own Serve
application: another team's application on the same Serve keeps answering.

Runs in its own Python process, which starts Ray and Serve with a bystander application
first (the "shared cluster"), then starts and stops Vigil on it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

SCRIPT = """
import json, sys, httpx, ray
from ray import serve
from cluster.settings import Settings
from cluster.stack import start_stack
from storage.embedded import free_port

database_url, data_dir, namespace = sys.argv[1:4]
port = free_port()
ray.init(namespace=namespace, include_dashboard=False, log_to_driver=False)
serve.start(http_options={"host": "127.0.0.1", "port": port})

@serve.deployment(ray_actor_options={"num_cpus": 0})
def bystander(request):
    return "still here"

serve.run(bystander.bind(), name="bystander", route_prefix="/bystander")
settings = Settings(
    data_dir=data_dir, http_port=port, shard_count=1, api_replicas=1, namespace=namespace
)
stack = start_stack(settings, database_url=database_url)
during = sorted(serve.status().applications)
stack.stop()
after = sorted(serve.status().applications)
answer = httpx.get(f"http://127.0.0.1:{port}/bystander", timeout=10).text
print(json.dumps({"started_ray": stack.started_ray, "during": during, "after": after,
                  "answer": answer}))
serve.shutdown()
ray.shutdown()
"""


@pytest.mark.slow
def test_stopping_vigil_on_a_shared_cluster_keeps_other_serve_apps(
    database_url: str, tmp_path: Path
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "VIGIL_ENV": "dev"}
    ran = subprocess.run(
        [
            sys.executable,
            "-c",
            SCRIPT,
            database_url,
            str(tmp_path),
            f"shared-{uuid.uuid4().hex[:8]}",
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
        check=False,
    )
    assert ran.returncode == 0, ran.stderr[-3000:]
    lines = [line for line in ran.stdout.splitlines() if line.startswith('{"started_ray"')]
    assert lines, ran.stdout[-3000:]
    result = json.loads(lines[0])
    assert result["started_ray"] is False
    assert result["during"] == ["bystander", "vigil"]
    assert result["after"] == ["bystander"]
    assert result["answer"] == "still here"
