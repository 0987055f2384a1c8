"""The committed HTTP contract is the one the code generates, and it is complete."""

from __future__ import annotations

import json
from pathlib import Path

from api.openapi import openapi_document

COMMITTED = Path(__file__).parents[2] / "docs" / "openapi.json"


def test_committed_openapi_matches_the_code() -> None:
    committed = json.loads(COMMITTED.read_text(encoding="utf-8"))
    assert committed == openapi_document(), "docs/openapi.json is stale: run `make openapi`"


def test_every_route_has_a_summary_and_typed_responses() -> None:
    doc = openapi_document()
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            assert op.get("summary"), f"{method.upper()} {path} has no summary"
            ok = [code for code in op["responses"] if code.startswith("2")]
            assert ok, f"{method.upper()} {path} documents no success response"
            for code in ok:
                content = op["responses"][code].get("content", {})
                assert "application/json" in content, f"{method.upper()} {path} {code} untyped"
                assert content["application/json"]["schema"], f"{method.upper()} {path} {code}"
            if "requestBody" in op:
                assert op["requestBody"]["content"], f"{method.upper()} {path} body untyped"


def test_schemas_carry_examples() -> None:
    schemas = openapi_document()["components"]["schemas"]
    for name in ("ReadingsUpload", "DeviceCreate", "SignupRequest", "LatestReading"):
        text = json.dumps(schemas[name])
        assert "example" in text, f"{name} has no examples"
