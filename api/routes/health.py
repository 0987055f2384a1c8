"""Liveness and readiness probes for load balancers and operators.

``/readyz`` asks every shard on its own with a short timeout, so one dead shard (or a dead
node) shows as that shard missing, not as the whole answer hanging or reading zero.
"""

from __future__ import annotations

import asyncio

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from api.deps import Pool, Router
from api.schemas import StrictJsonRoute
from storage import pools

router = APIRouter(tags=["health"], route_class=StrictJsonRoute)

PROBE_TIMEOUT_S = 1.5  # each check's own limit; the answer comes within about this


class Health(BaseModel):
    status: str = Field(examples=["ok"])


class ShardState(BaseModel):
    index: int = Field(examples=[0])
    answered: bool = Field(examples=[True])
    node: str | None = Field(
        None, description="Ray node id hosting the shard, if it answered", examples=["a1b2c3"]
    )
    devices: int | None = Field(None, description="Devices it hosts", examples=[120])
    buffered_rows: int | None = Field(
        None, description="Rows waiting in its write buffer for the database", examples=[0]
    )


class Readiness(BaseModel):
    status: str = Field(examples=["ready"])
    database: bool
    shards: int = Field(description="Shard actors that answered", examples=[2])
    shard_count: int = Field(examples=[2])
    shard_states: list[ShardState] = Field(
        default_factory=list, description="Each shard: did it answer, and on which node"
    )
    nodes: int = Field(0, description="Distinct Ray nodes hosting the answering shards")


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
    database, statuses = await asyncio.gather(
        pools.answers(pool, PROBE_TIMEOUT_S), shards.statuses(timeout_s=PROBE_TIMEOUT_S)
    )
    states = [
        ShardState(index=i, answered=False)
        if s is None
        else ShardState(
            index=i,
            answered=True,
            node=s.get("node"),
            devices=s.get("devices"),
            buffered_rows=s.get("buffered_rows"),
        )
        for i, s in enumerate(statuses)
    ]
    answered = sum(s.answered for s in states)
    ready = database and answered == shards.shard_count
    body = Readiness(
        status="ready" if ready else "not ready",
        database=database,
        shards=answered,
        shard_count=shards.shard_count,
        shard_states=states,
        nodes=len({s.node for s in states if s.node}),
    )
    if ready:
        return body
    return JSONResponse(status_code=503, content=body.model_dump())
