"""History imports: the job row of each uploaded file and its progress."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

_COLUMNS = (
    "id, device_id, format, filename, state, total, processed, accepted, duplicates, ignored,"
    " skipped, error, created_at, finished_at"
)


def _record(row: asyncpg.Record) -> dict[str, Any]:
    out = dict(row)
    if isinstance(out["skipped"], str):
        out["skipped"] = json.loads(out["skipped"])
    return out


async def create(
    pool: asyncpg.Pool,
    device_id: UUID,
    user_id: UUID,
    fmt: str,
    filename: str | None,
    total: int,
    ignored: int,
    skipped: list[dict[str, Any]],
) -> dict[str, Any]:
    row = await pool.fetchrow(
        "INSERT INTO imports (device_id, created_by, format, filename, total, ignored, skipped)"
        f" VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb) RETURNING {_COLUMNS}",
        device_id,
        user_id,
        fmt,
        filename,
        total,
        ignored,
        json.dumps(skipped),
    )
    return _record(row)


async def progress(
    pool: asyncpg.Pool, import_id: UUID, processed: int, accepted: int, duplicates: int
) -> None:
    await pool.execute(
        "UPDATE imports SET processed = processed + $2, accepted = accepted + $3,"
        " duplicates = duplicates + $4 WHERE id = $1",
        import_id,
        processed,
        accepted,
        duplicates,
    )


async def finish(pool: asyncpg.Pool, import_id: UUID, error: str | None = None) -> None:
    await pool.execute(
        "UPDATE imports SET state = $2, error = $3, finished_at = now() WHERE id = $1",
        import_id,
        "failed" if error else "done",
        error,
    )


async def get(pool: asyncpg.Pool, device_id: UUID, import_id: UUID) -> dict[str, Any] | None:
    row = await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM imports WHERE device_id = $1 AND id = $2", device_id, import_id
    )
    return None if row is None else _record(row)
