"""Single sign-on: started sign-ins (state, PKCE verifier, nonce) and linked identities."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

from storage.accounts import insert_user

# Stored in place of a password hash for accounts made by single sign-on: argon2 refuses it,
# so such an account has no password until its owner sets one by password reset.
NO_PASSWORD = "!sso"


async def save_login(
    pool: asyncpg.Pool,
    state_hash: bytes,
    provider: str,
    code_verifier: str,
    nonce: str,
    expires_at: datetime,
) -> None:
    await pool.execute(
        "INSERT INTO sso_logins (state_hash, provider, code_verifier, nonce, expires_at)"
        " VALUES ($1, $2, $3, $4, $5)",
        state_hash,
        provider,
        code_verifier,
        nonce,
        expires_at,
    )
    await pool.execute("DELETE FROM sso_logins WHERE expires_at < now()")


async def take_login(pool: asyncpg.Pool, state_hash: bytes, provider: str) -> asyncpg.Record | None:
    """The started sign-in, removed (a state works once); None when unknown or expired."""
    return await pool.fetchrow(
        "DELETE FROM sso_logins WHERE state_hash = $1 AND provider = $2 AND expires_at > now()"
        " RETURNING code_verifier, nonce",
        state_hash,
        provider,
    )


async def user_for_identity(
    pool: asyncpg.Pool, provider: str, subject: str, email: str, name: str
) -> asyncpg.Record:
    """The user this provider account signs in as: the linked one; else the user with this
    (verified) email, linked now; else a new user without a password, linked now."""
    async with pool.acquire() as conn, conn.transaction():
        user = await conn.fetchrow(
            "SELECT u.id, u.disabled_at FROM user_identities i JOIN users u ON u.id = i.user_id"
            " WHERE i.provider = $1 AND i.subject = $2",
            provider,
            subject,
        )
        if user is not None:
            return user
        user = await conn.fetchrow(
            "SELECT id, disabled_at FROM users WHERE lower(email) = lower($1)", email
        )
        user_id: UUID = (
            user["id"] if user else (await insert_user(conn, email, NO_PASSWORD, name))["id"]
        )
        await conn.execute(
            "INSERT INTO user_identities (provider, subject, user_id) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            provider,
            subject,
            user_id,
        )
        return user or await conn.fetchrow(
            "SELECT id, disabled_at FROM users WHERE id = $1", user_id
        )
