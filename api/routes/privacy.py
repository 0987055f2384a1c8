"""Privacy rights: export all my data (one zip of JSON and CSV), delete my account."""

from __future__ import annotations

import csv
import io
import json
import uuid
import zipfile
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from api import login_guard, rate_limits
from api.deps import Caller, Config, Pool, Router
from api.errors import ErrorBody, error, responses
from api.passwords import verify_password
from api.routes.admin import evict
from api.routes.audit import record_read
from api.schemas import RequestModel, StrictJsonRoute, Text
from storage import accounts, privacy

router = APIRouter(prefix="/v1/me", tags=["privacy"], route_class=StrictJsonRoute)

Rows = list[dict[str, Any]]


class MyData(BaseModel):
    """Everything Vigil stores about me; each set is a list of rows (objects)."""

    exported_at: datetime
    account: Rows
    profiles: Rows = Field(description="The profiles I manage: mine and my dependents'")
    devices: Rows
    readings: Rows
    shares: Rows = Field(description="Shares of my profiles, and those I follow")
    audit: Rows = Field(description="Who read my profiles' data")
    extra: dict[str, Rows] = Field(
        default_factory=dict, description="Other sets (alerts, events, alert settings)"
    )


class DeleteMe(RequestModel):
    password: Text = Field(min_length=1, max_length=256, description="My current password")
    confirm: Literal["DELETE"] = Field(description='Type "DELETE" to confirm', examples=["DELETE"])


class AccountDeleted(BaseModel):
    detail: str = Field(examples=["account deleted"])
    profiles: int = Field(description="Profiles deleted", examples=[2])
    devices: int = Field(description="Devices deleted (with their readings)", examples=[3])


def _csv(rows: Rows) -> str:
    columns: list[str] = []
    for row in rows:
        columns.extend(k for k in row if k not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in row.items()}
        )
    return out.getvalue()


def _zip(sets: dict[str, Rows], document: dict[str, Any]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("vigil-export.json", json.dumps(document, indent=1, default=str))
        for name, rows in sets.items():
            archive.writestr(f"{name}.csv", _csv(rows))
        archive.writestr(
            "README.txt",
            "Everything Vigil stores about you. vigil-export.json has it all; each CSV file"
            " holds one set (glucose in mg/dL, temperature in degrees C, times in UTC).\n",
        )
    return buffer.getvalue()


@router.get(
    "/export",
    response_model=MyData,
    summary="Export all my data (zip of JSON and CSV)",
    responses={
        200: {
            "description": "A zip archive: `vigil-export.json` and one CSV per set; or the"
            " JSON document alone when `Accept: application/json` is sent",
            "content": {"application/zip": {"schema": {"type": "string", "format": "binary"}}},
        },
        **responses(401),
        **rate_limits.TOO_MANY,
    },
    dependencies=[rate_limits.by_user("export_per_user", "exports")],
)
async def export_my_data(
    request: Request, background: BackgroundTasks, caller: Caller, pool: Pool
) -> Any:
    """My account, the profiles I manage (mine and my dependents'), their devices and all
    their readings, shares, audit entries about me, and alerts and events where present."""
    sets = await privacy.export(pool, caller.id)
    for profile in sets["profiles"]:  # audit log, after the response like every other read
        record_read(request, background, pool, caller.id, uuid.UUID(profile["id"]))
    core = ("account", "profiles", "devices", "readings", "shares", "audit")
    document = {
        "exported_at": datetime.now(UTC),
        **{k: sets[k] for k in core},
        "extra": {k: v for k, v in sets.items() if k not in core},
    }
    accept = request.headers.get("accept", "")
    if "application/json" in accept and "application/zip" not in accept:
        return MyData(**document)
    content = await run_in_threadpool(_zip, sets, document)
    stamp = datetime.now(UTC).strftime("%Y%m%d")
    return Response(
        content,
        media_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="vigil-export-{stamp}.zip"'},
    )


@router.delete(
    "",
    response_model=AccountDeleted,
    summary="Delete my account and everything of it",
    responses={
        **responses(401, 422),
        403: {"model": ErrorBody, "description": "Wrong password"},
        429: {"model": ErrorBody, "description": "Too many wrong passwords; see `Retry-After`"},
    },
)
async def delete_me(
    body: DeleteMe, request: Request, caller: Caller, pool: Pool, config: Config, shards: Router
) -> AccountDeleted:
    """Irreversible: deletes my account, the profiles I manage with their devices, readings,
    alerts and events, my shares both ways and my tokens. Followers of my profiles lose
    access at once. Needs my password and `confirm: "DELETE"`. The audit log keeps its
    entries (who read which profile id, when), as it never changes."""
    address = login_guard.client_address(request)
    await login_guard.check(pool, caller.email, address)
    user = await accounts.user_by_email(pool, caller.email)
    if user is None or not await verify_password(user["password_hash"], body.password):
        await login_guard.failed(pool, config, caller.email, address)
        raise error(403, "wrong password")
    profiles, device_ids = await privacy.delete_user(pool, caller.id)
    for device_id in device_ids:  # drop the deleted devices' in-memory actor state
        await evict(shards, device_id)
    return AccountDeleted(detail="account deleted", profiles=profiles, devices=len(device_ids))
