"""What platform operators see and change: users, profiles and devices across accounts."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from storage.accounts import insert_user
from storage.sessions import revoke_all_logins

_USER = (
    "u.id, u.email, u.name, u.created_at, u.disabled_at, u.is_admin,"
    " (SELECT count(*) FROM profiles p WHERE p.manager_id = u.id) AS profile_count,"
    " (SELECT count(*) FROM devices d JOIN profiles p ON p.id = d.profile_id"
    "  WHERE p.manager_id = u.id) AS device_count"
)
_PROFILE = (
    "p.id, p.manager_id, u.email AS manager_email, p.kind, p.name, p.timezone, p.created_at,"
    " (SELECT count(*) FROM devices d WHERE d.profile_id = p.id) AS device_count"
)
_DEVICE = "d.id, d.profile_id, d.kind, d.serial, d.model, d.interval_s, d.created_at"


class DuplicateSerial(Exception):
    """The target profile already has a device with this serial."""


async def active_admin(pool: asyncpg.Pool, user_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, email, name, is_admin FROM users WHERE id = $1 AND disabled_at IS NULL",
        user_id,
    )


async def search_users(
    pool: asyncpg.Pool, q: str | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {_USER} FROM users u WHERE $1::text IS NULL"
        " OR strpos(lower(u.email), lower($1)) > 0 OR strpos(lower(u.name), lower($1)) > 0"
        " ORDER BY u.created_at, u.id LIMIT $2 OFFSET $3",
        q,
        limit,
        offset,
    )


async def get_user(pool: asyncpg.Pool, user_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(f"SELECT {_USER} FROM users u WHERE u.id = $1", user_id)


async def set_disabled(pool: asyncpg.Pool, user_id: UUID, disabled: bool) -> asyncpg.Record | None:
    """Disable (revoking every refresh token) or re-enable a user; None if unknown."""
    async with pool.acquire() as conn, conn.transaction():
        found = await conn.fetchval(
            "UPDATE users SET disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END"
            " WHERE id = $1 RETURNING id",
            user_id,
            disabled,
        )
        if found is None:
            return None
        if disabled:
            await revoke_all_logins(conn, user_id)
        return await conn.fetchrow(f"SELECT {_USER} FROM users u WHERE u.id = $1", user_id)


async def search_profiles(
    pool: asyncpg.Pool, q: str | None, manager_id: UUID | None, limit: int, offset: int
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {_PROFILE} FROM profiles p JOIN users u ON u.id = p.manager_id"
        " WHERE ($1::text IS NULL OR strpos(lower(p.name), lower($1)) > 0"
        "        OR strpos(lower(u.email), lower($1)) > 0)"
        " AND ($2::uuid IS NULL OR p.manager_id = $2)"
        " ORDER BY p.created_at, p.id LIMIT $3 OFFSET $4",
        q,
        manager_id,
        limit,
        offset,
    )


async def search_devices(
    pool: asyncpg.Pool,
    q: str | None,
    profile_id: UUID | None,
    manager_id: UUID | None,
    limit: int,
    offset: int,
) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {_DEVICE} FROM devices d JOIN profiles p ON p.id = d.profile_id"
        " WHERE ($1::text IS NULL OR strpos(lower(d.serial), lower($1)) > 0"
        "        OR strpos(lower(coalesce(d.model, '')), lower($1)) > 0)"
        " AND ($2::uuid IS NULL OR d.profile_id = $2)"
        " AND ($3::uuid IS NULL OR p.manager_id = $3)"
        " ORDER BY d.created_at, d.id LIMIT $4 OFFSET $5",
        q,
        profile_id,
        manager_id,
        limit,
        offset,
    )


async def move_device(
    pool: asyncpg.Pool, device_id: UUID, profile_id: UUID
) -> asyncpg.Record | str:
    """The moved device, or 'device' / 'profile' naming what does not exist. Its upload
    token is revoked in the same transaction: whoever held it uploaded for the old profile."""
    async with pool.acquire() as conn, conn.transaction():
        if not await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM profiles WHERE id = $1)", profile_id
        ):
            return "profile"
        try:
            row = await conn.fetchrow(
                f"UPDATE devices d SET profile_id = $2 WHERE d.id = $1 RETURNING {_DEVICE}",
                device_id,
                profile_id,
            )
        except asyncpg.UniqueViolationError as exc:
            raise DuplicateSerial() from exc
        if row is None:
            return "device"
        await conn.execute("DELETE FROM device_upload_tokens WHERE device_id = $1", device_id)
        return row


async def make_admin(
    pool: asyncpg.Pool, email: str, name: str, password_hash: str
) -> tuple[asyncpg.Record, bool]:
    """Create an admin (with a 'self' profile), or promote the existing user with this email.
    Returns the user and whether it was created."""
    async with pool.acquire() as conn, conn.transaction():
        existing = await conn.fetchrow(
            "UPDATE users SET is_admin = true WHERE lower(email) = lower($1)"
            " RETURNING id, email, name",
            email,
        )
        if existing is not None:
            return existing, False
        return await insert_user(conn, email, password_hash, name, is_admin=True), True
