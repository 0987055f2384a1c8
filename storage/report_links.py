"""Read-only report links for clinicians: only a hash of the token is stored."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

import asyncpg

_COLUMNS = (
    "l.id, l.profile_id, l.days, l.window_end, l.label, l.created_at, l.expires_at, l.revoked_at"
)


# A link works only while its maker could make it now: an enabled account that manages the
# profile or follows it with an active `manage` share (revoked, scope reduced, account
# disabled or deleted: the link stops). Checked in the same query that opens the link.
_MAKER_MAY_SHARE = """EXISTS (
    SELECT 1 FROM users m WHERE m.id = l.created_by AND m.disabled_at IS NULL
    AND (p.manager_id = m.id OR EXISTS (
        SELECT 1 FROM shares s WHERE s.profile_id = p.id AND s.follower_id = m.id
        AND s.state = 'active' AND 'manage' = ANY (s.scopes))))"""


async def create_link(
    pool: asyncpg.Pool,
    profile_id: UUID,
    created_by: UUID,
    token_hash: bytes,
    days: int,
    window_end: datetime,
    label: str | None,
    expires_at: datetime,
) -> asyncpg.Record:
    return await pool.fetchrow(
        "INSERT INTO report_links AS l (profile_id, created_by, token_hash, days, window_end,"
        f" label, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {_COLUMNS},"
        " 0::bigint AS accesses, NULL::timestamptz AS last_access",
        profile_id,
        created_by,
        token_hash,
        days,
        window_end,
        label,
        expires_at,
    )


async def list_links(pool: asyncpg.Pool, profile_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {_COLUMNS}, count(a.id) AS accesses, max(a.accessed_at) AS last_access"
        " FROM report_links l LEFT JOIN report_link_accesses a ON a.link_id = l.id"
        " WHERE l.profile_id = $1 GROUP BY l.id ORDER BY l.created_at DESC, l.id",
        profile_id,
    )


async def revoke_link(pool: asyncpg.Pool, profile_id: UUID, link_id: UUID) -> bool:
    """True when the link exists (revoking twice is fine)."""
    status = await pool.execute(
        "UPDATE report_links SET revoked_at = coalesce(revoked_at, now())"
        " WHERE profile_id = $1 AND id = $2",
        profile_id,
        link_id,
    )
    return status.endswith(" 1")


async def open_link(
    pool: asyncpg.Pool,
    token_hash: bytes,
    fmt: str,
    client_ip: str | None,
    user_agent: str | None,
) -> asyncpg.Record | None:
    """The link of a token if it is neither revoked nor expired and its maker may still make
    it, recording the access."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            f"SELECT {_COLUMNS}, p.name, p.timezone FROM report_links l"
            " JOIN profiles p ON p.id = l.profile_id"
            " WHERE l.token_hash = $1 AND l.revoked_at IS NULL AND l.expires_at > now()"
            f" AND {_MAKER_MAY_SHARE}",
            token_hash,
        )
        if row is not None:
            await conn.execute(
                "INSERT INTO report_link_accesses (link_id, format, client_ip, user_agent)"
                " VALUES ($1, $2, $3, $4)",
                row["id"],
                fmt,
                client_ip,
                (user_agent or "")[:500] or None,
            )
        return row


async def list_accesses(pool: asyncpg.Pool, profile_id: UUID, link_id: UUID) -> list | None:
    exists = await pool.fetchval(
        "SELECT 1 FROM report_links WHERE profile_id = $1 AND id = $2", profile_id, link_id
    )
    if exists is None:
        return None
    return await pool.fetch(
        "SELECT accessed_at, format, client_ip, user_agent FROM report_link_accesses"
        " WHERE link_id = $1 ORDER BY accessed_at DESC, id DESC LIMIT 1000",
        link_id,
    )
