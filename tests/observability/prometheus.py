"""A real Prometheus server for the observability tests, from Debian's package.

``cluster/deploy/observability/fetch-prometheus.sh`` finds the binaries or fetches the
package into a cache (``apt-get download`` + ``dpkg -x``: no service installed or run).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from storage.embedded import free_port

OBSERVABILITY = Path(__file__).resolve().parents[2] / "cluster" / "deploy" / "observability"


def bindir() -> Path:
    out = subprocess.run(
        [str(OBSERVABILITY / "fetch-prometheus.sh")],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return Path(out.stdout.strip().splitlines()[-1])


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict[str, Any]]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The single value of ``expr`` now, or ``None`` when it has no result."""
        result = self.query(expr)
        assert len(result) <= 1, result
        return float(result[0]["value"][1]) if result else None

    def targets_up(self) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        return [t for t in r.json()["data"]["activeTargets"] if t["health"] == "up"]


@contextmanager
def running_prometheus(workdir: Path, targets: list[dict]) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (file_sd entries) every second, with the shipped
    rules loaded; stopped (by its pid) on exit."""
    (workdir / "targets.json").write_text(json.dumps(targets))
    (workdir / "rules.yml").write_text((OBSERVABILITY / "rules.yml").read_text())
    (workdir / "prometheus.yml").write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        "rule_files: [rules.yml]\n"
        "scrape_configs:\n"
        "  - job_name: vigil\n"
        "    file_sd_configs: [{files: [targets.json]}]\n"
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            str(bindir() / "prometheus"),
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert process.poll() is None, (workdir / "prometheus.log").read_text()
            assert time.monotonic() < deadline, "Prometheus did not become ready"
            time.sleep(0.2)
        yield Prometheus(url)
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
