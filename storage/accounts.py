"""Users, refresh tokens and the keys that sign access tokens."""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

import asyncpg

from storage.profiles import create_profile


class EmailTaken(Exception):
    """A user with this email (case-insensitively) exists already."""


async def insert_user(
    conn: asyncpg.Connection,
    email: str,
    password_hash: str,
    name: str,
    timezone: str = "UTC",
    *,
    is_admin: bool = False,
) -> asyncpg.Record:
    """The user and their own ('self') profile; run it inside the caller's transaction."""
    user = await conn.fetchrow(
        "INSERT INTO users (email, password_hash, name, is_admin) VALUES ($1, $2, $3, $4)"
        " RETURNING id, email, name, created_at",
        email,
        password_hash,
        name,
        is_admin,
    )
    await create_profile(conn, user["id"], "self", name, timezone)
    return user


async def create_user(
    pool: asyncpg.Pool, email: str, password_hash: str, name: str, timezone: str = "UTC"
) -> asyncpg.Record:
    """The user and their own ('self') profile, in one transaction."""
    try:
        async with pool.acquire() as conn, conn.transaction():
            return await insert_user(conn, email, password_hash, name, timezone)
    except asyncpg.UniqueViolationError as exc:
        raise EmailTaken(email) from exc


async def user_by_email(pool: asyncpg.Pool, email: str) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, email, name, password_hash, disabled_at FROM users"
        " WHERE lower(email) = lower($1)",
        email,
    )


async def set_password_hash(
    conn: asyncpg.Pool | asyncpg.Connection, user_id: UUID, password_hash: str
) -> None:
    await conn.execute("UPDATE users SET password_hash = $2 WHERE id = $1", user_id, password_hash)


async def upgrade_password_hash(pool: asyncpg.Pool, user_id: UUID, old: str, new: str) -> bool:
    """Replace ``old`` by ``new`` (same password, current argon2 parameters) unless the hash
    changed meanwhile (a password reset wins); True when replaced."""
    done = await pool.execute(
        "UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2",
        user_id,
        old,
        new,
    )
    return done == "UPDATE 1"


async def active_user(pool: asyncpg.Pool, user_id: UUID) -> asyncpg.Record | None:
    return await pool.fetchrow(
        "SELECT id, email, name FROM users WHERE id = $1 AND disabled_at IS NULL", user_id
    )


# -- refresh tokens -------------------------------------------------------------------------


async def store_refresh_token(
    pool: asyncpg.Pool, user_id: UUID, family_id: UUID, token_hash: bytes, expires_at: datetime
) -> None:
    await pool.execute(
        "INSERT INTO refresh_tokens (user_id, family_id, token_hash, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        user_id,
        family_id,
        token_hash,
        expires_at,
    )


async def use_refresh_token(pool: asyncpg.Pool, token_hash: bytes) -> asyncpg.Record | None:
    """Mark a refresh token used and return it (with ``reused`` set when it had been used,
    and ``disabled`` when its user is).

    A token presented a second time means it leaked: the caller revokes its whole family.
    """
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT t.id, t.user_id, t.family_id, t.expires_at, t.used_at IS NOT NULL AS reused,"
            " t.revoked_at IS NOT NULL AS revoked, u.disabled_at IS NOT NULL AS disabled"
            " FROM refresh_tokens t JOIN users u ON u.id = t.user_id WHERE t.token_hash = $1"
            " FOR UPDATE OF t",
            token_hash,
        )
        if row is not None and not row["reused"]:
            await conn.execute("UPDATE refresh_tokens SET used_at = now() WHERE id = $1", row["id"])
        return row


async def revoke_token_family(pool: asyncpg.Pool, family_id: UUID) -> None:
    await pool.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE family_id = $1 AND revoked_at IS NULL",
        family_id,
    )


# -- signing keys ---------------------------------------------------------------------------

SIGNING_KEY_LOCK = 7311002  # advisory lock held while signing keys are added or rotated


async def signing_keys(pool: asyncpg.Pool) -> list[asyncpg.Record]:
    """All keys, newest first; the newest unretired one signs."""
    return await pool.fetch(
        "SELECT kid, algorithm, private_pem, public_jwk, created_at, retired_at"
        " FROM signing_keys ORDER BY created_at DESC"
    )


async def add_signing_key(
    pool: asyncpg.Pool,
    kid: str,
    algorithm: str,
    private_pem: str,
    public_jwk: dict,
    *,
    only_if_none_active: bool = False,
) -> bool:
    """Store a key; with ``only_if_none_active`` only when no unretired key exists, so that
    replicas starting together agree on one key instead of each creating its own."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SIGNING_KEY_LOCK)
        if only_if_none_active and await conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM signing_keys WHERE retired_at IS NULL)"
        ):
            return False
        await conn.execute(
            "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk)"
            " VALUES ($1, $2, $3, $4::jsonb)",
            kid,
            algorithm,
            private_pem,
            json.dumps(public_jwk),
        )
        return True
