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
from tests.helpers import wait_until

OBSERVABILITY = Path(__file__).resolve().parents[2] / "cluster" / "deploy" / "observability"
# Scrape interval and timeout. Late in the suite the node's endpoint holds every earlier
# test's series; a loaded CI machine took over a second to answer it, so with a 1 s interval
# (and so a 1 s timeout) every scrape failed and the target never came up.
SCRAPE_S = 3


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

    def targets(self) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/targets", timeout=10)
        return r.json()["data"]["activeTargets"]

    def wait_up(self, timeout_s: float) -> None:
        """Until every target's last scrape succeeded; on timeout, fails naming each
        target's last error (a scrape that took longer than ``SCRAPE_S``, say)."""

        def every_target_up() -> bool:
            targets = self.targets()
            return bool(targets) and all(t["health"] == "up" for t in targets)

        def errors() -> str:
            seen = [(t["scrapeUrl"], t["health"], t["lastError"]) for t in self.targets()]
            return f"every target scraped (last scrapes: {seen})"

        wait_until(every_target_up, timeout_s, errors)


@contextmanager
def running_prometheus(workdir: Path, targets: list[dict]) -> Iterator[Prometheus]:
    """Prometheus scraping ``targets`` (file_sd entries) every ``SCRAPE_S``, with the shipped
    rules loaded; stopped (by its pid) on exit."""
    (workdir / "targets.json").write_text(json.dumps(targets))
    (workdir / "rules.yml").write_text((OBSERVABILITY / "rules.yml").read_text())
    (workdir / "prometheus.yml").write_text(
        f"global: {{scrape_interval: {SCRAPE_S}s, scrape_timeout: {SCRAPE_S}s,"
        f" evaluation_interval: {SCRAPE_S}s}}\n"
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
