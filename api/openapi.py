"""The OpenAPI document, generated from the code (committed as docs/openapi.json)."""

from __future__ import annotations

from typing import Any

from api.app import create_app
from api.config import ApiConfig


def openapi_document() -> dict[str, Any]:
    return create_app(ApiConfig(database_url="postgresql://unused"), connect=False).openapi()
