"""web/src/api/schema.d.ts is generated from docs/openapi.json and must not go stale (like
the OpenAPI document itself, tests/api/test_openapi.py)."""

from __future__ import annotations

import subprocess
from pathlib import Path

WEB = Path(__file__).parents[2] / "web"


def test_committed_typescript_types_match_the_openapi_document(tmp_path: Path) -> None:
    generator = WEB / "node_modules" / ".bin" / "openapi-typescript"
    assert generator.exists(), "web/node_modules missing: run `make web` (npm ci)"
    out = tmp_path / "schema.d.ts"
    subprocess.run(
        [str(generator), "../docs/openapi.json", "-o", str(out)],
        cwd=WEB,
        check=True,
        capture_output=True,
    )
    committed = (WEB / "src" / "api" / "schema.d.ts").read_text(encoding="utf-8")
    assert out.read_text(encoding="utf-8") == committed, (
        "web/src/api/schema.d.ts is stale: run `make openapi`"
    )
