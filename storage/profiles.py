"""Profiles: the people readings belong to (the user themself, or their dependents)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

_COLUMNS = "p.id, p.manager_id, p.kind, p.name, p.timezone, p.created_at"


async def create_profile(
    conn: asyncpg.Pool | asyncpg.Connection, manager_id: UUID, kind: str, name: str, timezone: str
) -> asyncpg.Record:
    return await conn.fetchrow(
        "INSERT INTO profiles AS p (manager_id, kind, name, timezone) VALUES ($1, $2, $3, $4)"
        f" RETURNING {_COLUMNS}, NULL::text[] AS scopes",
        manager_id,
        kind,
        name,
        timezone,
    )


async def visible_profiles(pool: asyncpg.Pool, user_id: UUID) -> list[asyncpg.Record]:
    """Profiles the user manages (scopes NULL) and follows (with the share's scopes)."""
    return await pool.fetch(
        f"SELECT {_COLUMNS}, NULL::text[] AS scopes FROM profiles p WHERE p.manager_id = $1"
        f" UNION ALL SELECT {_COLUMNS}, s.scopes FROM profiles p JOIN shares s"
        "   ON s.profile_id = p.id AND s.follower_id = $1 AND s.state = 'active'"
        " ORDER BY created_at, id",
        user_id,
    )


async def get_profile(pool: asyncpg.Pool, profile_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {_COLUMNS} FROM profiles p WHERE p.id = $1", profile_id)


async def self_profile_id(pool: asyncpg.Pool, user_id: UUID) -> UUID:
    return await pool.fetchval(
        "SELECT id FROM profiles WHERE manager_id = $1 AND kind = 'self'", user_id
    )
