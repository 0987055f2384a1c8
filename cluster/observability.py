"""Where to scrape Vigil's metrics: one Prometheus target per Ray node.

Every Vigil process records through Ray's metrics API (``actors.metrics``); each node's Ray
metrics agent serves all of that node's processes on one port (``MetricsExportPort``, set
with ``VIGIL_METRICS_EXPORT_PORT`` or chosen by Ray). This writes those targets as a
Prometheus ``file_sd_configs`` file — what Ray's dashboard writes as
``prom_metrics_service_discovery.json``, which Vigil does not run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import ray


def scrape_targets() -> list[dict[str, Any]]:
    """The ``file_sd`` entries of the connected Ray cluster's live nodes."""
    targets = []
    for node in ray.nodes():
        if not node.get("Alive") or not node.get("MetricsExportPort"):
            continue
        targets.append(
            {
                "targets": [f"{node['NodeManagerAddress']}:{node['MetricsExportPort']}"],
                "labels": {"ray_node_id": node["NodeID"], "job": "vigil"},
            }
        )
    return targets


def write_targets(path: Path, targets: list[dict[str, Any]]) -> None:
    """Atomically (Prometheus re-reads the file when it changes)."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(targets, indent=2) + "\n")
    os.replace(tmp, path)
