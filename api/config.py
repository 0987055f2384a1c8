"""What the API needs to know to run; built from the process settings by ``cluster``."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ApiConfig(BaseModel):
    database_url: str = Field(description="PostgreSQL URL (asyncpg) for the API's reads")
    shard_count: int = Field(2, ge=1)
    namespace: str = "vigil"
    issuer: str = "http://127.0.0.1:8000"
    access_token_ttl_s: int = Field(15 * 60, ge=60)
    refresh_token_ttl_s: int = Field(30 * 86_400, ge=3600)
    max_batch_readings: int = Field(10_000, ge=1)
    db_pool_min: int = 1
    db_pool_max: int = 10
