"""Device upload tokens: one per device, stored as a hash; a new one replaces the old."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from storage.batches import by_ordinality


async def replace_token(pool: asyncpg.Pool, device_id: UUID, token_hash: bytes) -> datetime:
    """Store the device's new token; the previous one stops working. Returns when."""
    return await pool.fetchval(
        "INSERT INTO device_upload_tokens (device_id, token_hash) VALUES ($1, $2)"
        " ON CONFLICT (device_id) DO UPDATE SET token_hash = EXCLUDED.token_hash,"
        " created_at = now() RETURNING created_at",
        device_id,
        token_hash,
    )


_DEVICES_FOR_TOKENS = """
SELECT q.n, d.id, d.profile_id, d.kind, d.serial, d.model, d.interval_s, d.created_at
FROM unnest($1::bytea[]) WITH ORDINALITY AS q(token_hash, n)
JOIN device_upload_tokens t ON t.token_hash = q.token_hash
JOIN devices d ON d.id = t.device_id
JOIN profiles p ON p.id = d.profile_id
JOIN users u ON u.id = p.manager_id AND u.disabled_at IS NULL
"""


async def devices_for_tokens(
    pool: asyncpg.Pool, token_hashes: list[bytes]
) -> list[asyncpg.Record | None]:
    """For each token hash, in their order, the device it may upload to while the profile's
    manager is an active user (None otherwise), from one statement (``storage.batches``)."""
    return by_ordinality(await pool.fetch(_DEVICES_FOR_TOKENS, token_hashes), len(token_hashes))
