"""Everything stored about one user (for export), and deleting it all."""

from __future__ import annotations

import json
from typing import Any
from uuid import UUID

import asyncpg

# Tables of other domains, keyed by profile, included in an export when they exist.
_PROFILE_TABLES = ("alert_settings", "alerts", "events", "nightscout_documents")
# Columns never exported: secrets and their hashes.
_SECRET = ("password_hash", "code_hash", "token_hash", "private_pem", "secret")


def _clean(value: str) -> dict[str, Any]:
    row = json.loads(value)
    return {k: v for k, v in row.items() if k not in _SECRET and not k.endswith("_hash")}


async def _rows(conn: asyncpg.Connection, sql: str, *args: Any) -> list[dict[str, Any]]:
    return [_clean(r[0]) for r in await conn.fetch(sql, *args)]


async def export(pool: asyncpg.Pool, user_id: UUID) -> dict[str, list[dict[str, Any]]]:
    """Named row sets: the account, the profiles the user manages, their devices and readings,
    shares of those profiles and those the user follows, and audit entries about them.
    Read in one REPEATABLE READ transaction, so the sets agree with each other."""
    async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
        profiles = await _rows(
            conn,
            "SELECT to_jsonb(p)::text FROM profiles p WHERE manager_id = $1 ORDER BY created_at",
            user_id,
        )
        profile_ids = [UUID(p["id"]) for p in profiles]
        devices = await _rows(
            conn,
            "SELECT to_jsonb(d)::text FROM devices d WHERE profile_id = ANY ($1)"
            " ORDER BY created_at",
            profile_ids,
        )
        data = {
            "account": await _rows(
                conn, "SELECT to_jsonb(u)::text FROM users u WHERE id = $1", user_id
            ),
            "profiles": profiles,
            "devices": devices,
            "readings": await _rows(
                conn,
                "SELECT to_jsonb(r)::text FROM readings r WHERE device_id = ANY ($1)"
                " ORDER BY device_id, ts",
                [UUID(d["id"]) for d in devices],
            ),
            "shares": await _rows(
                conn,
                "SELECT to_jsonb(s)::text FROM shares s WHERE profile_id = ANY ($1)"
                " OR follower_id = $2 ORDER BY created_at",
                profile_ids,
                user_id,
            ),
            "audit": await _rows(
                conn,
                "SELECT to_jsonb(a)::text FROM audit_log a WHERE profile_id = ANY ($1) ORDER BY id",
                profile_ids,
            ),
        }
        for table in _PROFILE_TABLES:
            has_profile = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM information_schema.columns"
                " WHERE table_schema = current_schema() AND table_name = $1"
                " AND column_name = 'profile_id')",
                table,
            )
            if has_profile:
                data[table] = await _rows(
                    conn,
                    f'SELECT to_jsonb(t)::text FROM "{table}" t WHERE profile_id = ANY ($1)',
                    profile_ids,
                )
        return data


async def delete_user(pool: asyncpg.Pool, user_id: UUID) -> tuple[int, list[UUID]]:
    """Delete the user; their profiles, devices, readings, shares (both ways) and tokens go
    with them (ON DELETE CASCADE). Audit entries stay (the log is append-only). Returns how
    many profiles were deleted and the ids of the devices deleted."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT (SELECT count(*) FROM profiles WHERE manager_id = $1) AS profiles,"
            " ARRAY(SELECT d.id FROM devices d JOIN profiles p ON p.id = d.profile_id"
            "  WHERE p.manager_id = $1) AS device_ids",
            user_id,
        )
        await conn.execute("DELETE FROM users WHERE id = $1", user_id)
        return row["profiles"], list(row["device_ids"])
