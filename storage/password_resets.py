"""One-time password-reset tokens (stored as SHA-256 hashes)."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from storage.accounts import set_password_hash
from storage.sessions import revoke_all_logins


async def create(pool: asyncpg.Pool, user_id: UUID, token_hash: bytes, ttl_s: int) -> None:
    await pool.execute(
        "INSERT INTO password_resets (token_hash, user_id, expires_at)"
        " VALUES ($1, $2, now() + make_interval(secs => $3))",
        token_hash,
        user_id,
        ttl_s,
    )


async def redeem(
    pool: asyncpg.Pool, token_hash: bytes, password_hash: str
) -> asyncpg.Record | None:
    """Use the token once: set the user's password and revoke all their refresh tokens, in one
    transaction. None when the token is unknown, used, expired or the user is disabled."""
    async with pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(
            "UPDATE password_resets r SET used_at = now() FROM users u"
            " WHERE r.token_hash = $1 AND r.used_at IS NULL AND r.expires_at > now()"
            " AND u.id = r.user_id AND u.disabled_at IS NULL"
            " RETURNING u.id, u.email",
            token_hash,
        )
        if user is None:
            return None
        await set_password_hash(conn, user["id"], password_hash)
        await revoke_all_logins(conn, user["id"])
        # Other outstanding reset tokens of this user are void as well.
        await conn.execute(
            "UPDATE password_resets SET used_at = now() WHERE user_id = $1 AND used_at IS NULL",
            user["id"],
        )
        return user
