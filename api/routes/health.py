"""Liveness and readiness probes for load balancers and operators."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Pool, Router
from api.schemas import StrictJsonRoute

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    database: bool
    shards: int = Field(description="Shard actors that answered", examples=[2])
    shard_count: int = Field(examples=[2])


@router.get("/healthz", response_model=Health, summary="The process is up")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="The database and every shard actor answer",
    responses={503: {"model": Readiness, "description": "Not ready"}},
)
async def readyz(pool: Pool, shards: Router) -> Readiness | JSONResponse:
    try:
        database = await pool.fetchval("SELECT true", timeout=2)
    except Exception:
        database = False
    try:
        answered = len(await shards.statuses(timeout_s=2))
    except Exception:
        answered = 0
    ready = bool(database) and answered == shards.shard_count
    body = Readiness(
        status="ready" if ready else "not ready",
        database=bool(database),
        shards=answered,
        shard_count=shards.shard_count,
    )
    if ready:
        return body
    return JSONResponse(status_code=503, content=body.model_dump())
