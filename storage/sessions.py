"""Sessions: signing-key rotation and ending logins (refresh-token families).

Keys and refresh tokens are created in storage.accounts; this module retires and revokes.
"""

from __future__ import annotations

import json
from datetime import datetime
from uuid import UUID

import asyncpg

from storage import live
from storage.accounts import SIGNING_KEY_LOCK


async def rotate_signing_key(
    pool: asyncpg.Pool,
    kid: str,
    algorithm: str,
    private_pem: str,
    public_jwk: dict,
    forget_retired_before: datetime,
) -> list[str]:
    """Store a new signing key and retire the ones signing now (they keep verifying);
    delete keys retired before ``forget_retired_before`` (every token they signed has
    expired). Returns the kids just retired."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock($1)", SIGNING_KEY_LOCK)
        retired = await conn.fetch(
            "UPDATE signing_keys SET retired_at = now() WHERE retired_at IS NULL RETURNING kid"
        )
        await conn.execute("DELETE FROM signing_keys WHERE retired_at < $1", forget_retired_before)
        await conn.execute(
            "INSERT INTO signing_keys (kid, algorithm, private_pem, public_jwk, created_at)"
            " VALUES ($1, $2, $3, $4::jsonb, clock_timestamp())",
            kid,
            algorithm,
            private_pem,
            json.dumps(public_jwk),
        )
        return [r["kid"] for r in retired]


async def revoke_login(pool: asyncpg.Pool, token_hash: bytes) -> int:
    """Revoke every refresh token of the login (family) this token belongs to."""
    result = await pool.execute(
        "UPDATE refresh_tokens SET revoked_at = now() WHERE revoked_at IS NULL AND family_id ="
        " (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)",
        token_hash,
    )
    return int(result.split()[-1])


async def revoke_all_logins(pool: asyncpg.Pool | asyncpg.Connection, user_id: UUID) -> int:
    """Revoke every refresh token of the user, and tell every replica (at commit) to close
    the user's live streams, in one statement."""
    return await pool.fetchval(
        "WITH revoked AS (UPDATE refresh_tokens SET revoked_at = now()"
        "  WHERE user_id = $1 AND revoked_at IS NULL RETURNING 1)"
        " SELECT (SELECT count(*) FROM revoked)::int,"
        "  pg_notify($2, $3)",
        user_id,
        live.CHANNEL,
        live.encode(live.AccountEnded(user_id, "logout")),
    )
