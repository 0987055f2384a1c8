"""Device upload tokens: one per device, stored as a hash; a new one replaces the old."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg


async def replace_token(pool: asyncpg.Pool, device_id: UUID, token_hash: bytes) -> datetime:
    """Store the device's new token; the previous one stops working. Returns when."""
    return await pool.fetchval(
        "INSERT INTO device_upload_tokens (device_id, token_hash) VALUES ($1, $2)"
        " ON CONFLICT (device_id) DO UPDATE SET token_hash = EXCLUDED.token_hash,"
        " created_at = now() RETURNING created_at",
        device_id,
        token_hash,
    )


async def device_for_token(pool: asyncpg.Pool, token_hash: bytes) -> asyncpg.Record | None:
    """The device this token may upload to, while the profile's manager is an active user."""
    return await pool.fetchrow(
        "SELECT d.id, d.profile_id, d.kind, d.serial, d.model, d.interval_s, d.created_at"
        " FROM device_upload_tokens t JOIN devices d ON d.id = t.device_id"
        " JOIN profiles p ON p.id = d.profile_id"
        " JOIN users u ON u.id = p.manager_id AND u.disabled_at IS NULL"
        " WHERE t.token_hash = $1",
        token_hash,
    )
