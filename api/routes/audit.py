"""The audit log: every read of a person's health data is recorded (who, whose, what, when,
from where); people read who viewed their data at `GET /v1/me/audit`.

Reads are recorded by the access dependencies (`profile_with`, `device_with`) for GET
requests, with one INSERT run after the response is sent. Writes (reading uploads on the
ingest hot path) are not recorded here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import asyncpg
from fastapi import APIRouter, BackgroundTasks, Query, Request
from pydantic import AwareDatetime, BaseModel, Field

from api.deps import Caller, Pool
from api.errors import check_window, responses
from api.schemas import StrictJsonRoute
from storage import audit
from storage.readings import ReadAudit

router = APIRouter(prefix="/v1/me", tags=["audit"], route_class=StrictJsonRoute)


def record_read(
    request: Request,
    background: BackgroundTasks,
    pool: asyncpg.Pool,
    actor_id: uuid.UUID,
    profile_id: uuid.UUID,
    device_id: uuid.UUID | None = None,
    actor_kind: str = "user",
) -> None:
    """Schedule the audit entry of a GET of ``profile_id``'s data (after the response)."""
    if request.method != "GET":
        return
    read = read_audit(request, actor_id)
    background.add_task(
        audit.record,
        pool,
        actor_kind,
        actor_id,
        profile_id,
        device_id,
        read.action,
        read.client_addr,
        read.user_agent,
    )


def read_audit(request: Request, actor_id: uuid.UUID) -> ReadAudit:
    """The audit entry's who, what and from where of this request (a GET)."""
    route = request.scope.get("route")
    return ReadAudit(
        actor_id=actor_id,
        action=f"{request.method} {getattr(route, 'path', request.url.path)}",
        client_addr=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
    )


class AuditEntry(BaseModel):
    id: int = Field(examples=[1042])
    at: datetime
    actor_kind: Literal["user", "device_token", "admin", "nightscout"] = Field(
        description="`nightscout`: an app reading the profile's Nightscout site",
        examples=["user"],
    )
    actor_id: uuid.UUID = Field(
        description="The user (or device token, or Nightscout token) that read the data"
    )
    actor_email: str | None = Field(
        description="The reading user's email, if the account still exists",
        examples=["grandma@example.org"],
    )
    profile_id: uuid.UUID = Field(description="Whose data was read")
    device_id: uuid.UUID | None = Field(description="The device, for device routes")
    action: str = Field(examples=["GET /v1/devices/{device_id}/readings"])
    client_addr: str | None = Field(examples=["203.0.113.7"])
    user_agent: str | None = Field(examples=["Vigil-iOS/1.4"])


class AuditPage(BaseModel):
    items: list[AuditEntry]
    next_before: int | None = Field(
        description="Pass as `before` for the next (older) page; null on the last page",
        examples=[1001],
    )


Start = Annotated[AwareDatetime | None, Query(description="Entries at or after this time")]
End = Annotated[AwareDatetime | None, Query(description="Entries before this time")]
Before = Annotated[
    int | None,
    Query(ge=1, le=2**63 - 1, description="Entries older than this id (paging)"),
]
Limit = Annotated[int, Query(ge=1, le=500, description="Page size")]


def page(rows: list[asyncpg.Record], limit: int) -> AuditPage:
    items = [AuditEntry(**dict(r)) for r in rows]
    return AuditPage(items=items, next_before=items[-1].id if len(items) == limit else None)


@router.get(
    "/audit",
    response_model=AuditPage,
    summary="Who viewed my data (and my dependents')",
    responses=responses(401, 422),
)
async def my_audit(
    caller: Caller,
    pool: Pool,
    start: Start = None,
    end: End = None,
    before: Before = None,
    limit: Limit = 100,
) -> AuditPage:
    """Every read of the profiles I manage, newest first, including my own reads."""
    check_window(start, end)
    rows = await audit.entries(
        pool, manager_id=caller.id, start=start, end=end, before_id=before, limit=limit
    )
    return page(rows, limit)
