"""The append-only audit log of reads of people's health data."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

_COLUMNS = (
    "a.id, a.at, a.actor_kind, a.actor_id, a.profile_id, a.device_id, a.action,"
    " a.client_addr, a.user_agent"
)


async def record(
    pool: asyncpg.Pool,
    actor_kind: str,
    actor_id: UUID,
    profile_id: UUID,
    device_id: UUID | None,
    action: str,
    client_addr: str | None,
    user_agent: str | None,
) -> None:
    await pool.execute(
        "INSERT INTO audit_log"
        " (actor_kind, actor_id, profile_id, device_id, action, client_addr, user_agent)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7)",
        actor_kind,
        actor_id,
        profile_id,
        device_id,
        action,
        client_addr,
        (user_agent or "")[:300] or None,
    )


async def entries(
    pool: asyncpg.Pool,
    *,
    manager_id: UUID | None = None,
    profile_id: UUID | None = None,
    actor_id: UUID | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[asyncpg.Record]:
    """Newest first. ``manager_id``: only about profiles that user manages (their own and
    their dependents'); the other filters narrow further. ``before_id`` pages on."""
    return await pool.fetch(
        f"SELECT {_COLUMNS}, u.email AS actor_email FROM audit_log a"
        " LEFT JOIN users u ON a.actor_kind <> 'device_token' AND u.id = a.actor_id"
        " WHERE ($1::uuid IS NULL OR a.profile_id IN"
        "        (SELECT id FROM profiles WHERE manager_id = $1))"
        " AND ($2::uuid IS NULL OR a.profile_id = $2)"
        " AND ($3::uuid IS NULL OR a.actor_id = $3)"
        " AND ($4::timestamptz IS NULL OR a.at >= $4)"
        " AND ($5::timestamptz IS NULL OR a.at < $5)"
        " AND ($6::bigint IS NULL OR a.id < $6)"
        " ORDER BY a.id DESC LIMIT $7",
        manager_id,
        profile_id,
        actor_id,
        start,
        end,
        before_id,
        limit,
    )
