"""The shipped Prometheus rules are valid and behave as their unit tests say."""

from __future__ import annotations

import subprocess

from tests.observability.prometheus import OBSERVABILITY, bindir


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(bindir() / "promtool"), *args],
        cwd=OBSERVABILITY,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_shipped_rules_pass_promtool_check() -> None:
    done = promtool("check", "rules", "rules.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 8 rules found" in done.stdout


def test_rules_unit_tests_pass() -> None:
    done = promtool("test", "rules", "rules_test.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS" in done.stdout


def _referenced(expr: str) -> set[str]:
    import re

    return set(re.findall(r"\bray_vigil_[a-z_]+", expr))


def _defined() -> set[str]:
    from actors.metrics import _DEFINITIONS

    out = set()
    for name, (kind, *_) in _DEFINITIONS.items():
        suffixes = ("_bucket", "_sum", "_count") if kind == "histogram" else ("",)
        out |= {f"ray_{name}{s}" for s in suffixes}
    return out


def test_rules_and_dashboard_use_only_metrics_vigil_defines() -> None:
    import json

    import yaml

    rules = yaml.safe_load((OBSERVABILITY / "rules.yml").read_text())
    exprs = [r["expr"] for g in rules["groups"] for r in g["rules"]]
    dashboard = json.loads((OBSERVABILITY / "grafana-dashboard.json").read_text())
    exprs += [t["expr"] for p in dashboard["panels"] for t in p.get("targets", ())]
    used = set().union(*map(_referenced, exprs))
    assert used, "no Vigil metric referenced"
    assert used <= _defined(), used - _defined()
    # The dashboard shows the ingest path and the alert path.
    titles = " ".join(p["title"] for p in dashboard["panels"])
    for needed in ("Readings", "Write-buffer", "alert committed", "delivered", "Delivery"):
        assert needed in titles
