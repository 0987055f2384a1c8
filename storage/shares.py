"""Shares: invitations to follow a profile, and the active follows they turn into.

A share is born ``pending`` with a one-time code (stored only as a hash) and becomes
``active`` when someone accepts it, or ``declined``; an active share ends ``revoked``
(by the profile's manager) or ``left`` (by the follower). Grants are read from this table
on every request (storage.access), so an ended share stops working at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import asyncpg

_COLUMNS = (
    "s.id, s.profile_id, s.invited_by, s.invited_email, s.follower_id, s.scopes, s.state,"
    " s.expires_at, s.created_at, s.accepted_at, s.ended_at"
)
_WITH_PEOPLE = (
    f"{_COLUMNS}, p.name AS profile_name, f.email AS follower_email, f.name AS follower_name"
    " FROM shares s JOIN profiles p ON p.id = s.profile_id"
    " LEFT JOIN users f ON f.id = s.follower_id"
)


class TooManyShares(Exception):
    """The profile has as many followers and open invitations as it may have."""


@dataclass(frozen=True, slots=True)
class CodeRefused(Exception):
    """An invitation code that cannot be used, and why (for a clear message)."""

    reason: str  # unknown | expired | accepted | declined | revoked | left | own | following
    expires_at: datetime | None = None


async def invite(
    pool: asyncpg.Pool,
    profile_id: UUID,
    invited_by: UUID,
    email: str,
    scopes: list[str],
    code_hash: bytes,
    expires_at: datetime,
    limit: int,
) -> asyncpg.Record:
    """A pending share; refused with TooManyShares when the profile already has ``limit``
    active followers plus unexpired invitations. The profile row is locked so that two
    concurrent invitations cannot both take the last place."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute("SELECT 1 FROM profiles WHERE id = $1 FOR UPDATE", profile_id)
        taken = await conn.fetchval(
            "SELECT count(*) FROM shares WHERE profile_id = $1"
            " AND (state = 'active' OR (state = 'pending' AND expires_at > now()))",
            profile_id,
        )
        if taken >= limit:
            raise TooManyShares(profile_id)
        share_id = await conn.fetchval(
            "INSERT INTO shares (profile_id, invited_by, invited_email, scopes, code_hash,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
            profile_id,
            invited_by,
            email,
            scopes,
            code_hash,
            expires_at,
        )
        return await conn.fetchrow(f"SELECT {_WITH_PEOPLE} WHERE s.id = $1", share_id)


async def answer(
    pool: asyncpg.Pool, code_hash: bytes, user_id: UUID, accept: bool
) -> asyncpg.Record:
    """Accept or decline the invitation with this code as ``user_id``; CodeRefused when the
    code is unknown, expired or already answered, or the user manages the profile."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT s.id, s.profile_id, s.state, s.accepted_at, s.expires_at,"
            " s.expires_at <= now() AS expired,"
            " p.manager_id FROM shares s JOIN profiles p ON p.id = s.profile_id"
            " WHERE s.code_hash = $1 FOR UPDATE OF s",
            code_hash,
        )
        if row is None:
            raise CodeRefused("unknown")
        if row["state"] != "pending":
            raise CodeRefused("accepted" if row["accepted_at"] else row["state"])
        if row["expired"]:
            raise CodeRefused("expired", row["expires_at"])
        if row["manager_id"] == user_id:
            raise CodeRefused("own")
        if accept:
            following = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM shares WHERE profile_id = $1 AND follower_id = $2"
                " AND state = 'active')",
                row["profile_id"],
                user_id,
            )
            if following:
                raise CodeRefused("following")
            await conn.execute(
                "UPDATE shares SET state = 'active', follower_id = $2, accepted_at = now()"
                " WHERE id = $1",
                row["id"],
                user_id,
            )
        else:
            await conn.execute(
                "UPDATE shares SET state = 'declined', follower_id = $2, ended_at = now()"
                " WHERE id = $1",
                row["id"],
                user_id,
            )
        return await conn.fetchrow(f"SELECT {_WITH_PEOPLE} WHERE s.id = $1", row["id"])


async def profile_shares(pool: asyncpg.Pool, profile_id: UUID) -> list[asyncpg.Record]:
    """The profile's active followers and its unexpired pending invitations."""
    return await pool.fetch(
        f"SELECT {_WITH_PEOPLE} WHERE s.profile_id = $1"
        " AND (s.state = 'active' OR (s.state = 'pending' AND s.expires_at > now()))"
        " ORDER BY s.created_at, s.id",
        profile_id,
    )


async def following(pool: asyncpg.Pool, user_id: UUID) -> list[asyncpg.Record]:
    """The user's active follows."""
    return await pool.fetch(
        f"SELECT {_WITH_PEOPLE} WHERE s.follower_id = $1 AND s.state = 'active'"
        " ORDER BY s.accepted_at, s.id",
        user_id,
    )


async def revoke(pool: asyncpg.Pool, profile_id: UUID, share_id: UUID) -> asyncpg.Record | None:
    """End an active share or cancel a pending invitation of the profile; None if there is
    no such open share."""
    return await _end(pool, "revoked", "s.profile_id = $2", share_id, profile_id)


async def leave(pool: asyncpg.Pool, user_id: UUID, share_id: UUID) -> asyncpg.Record | None:
    """The follower ends their own active share; None if they have no such share."""
    return await _end(pool, "left", "s.follower_id = $2 AND s.state = 'active'", share_id, user_id)


async def _end(
    pool: asyncpg.Pool, state: str, condition: str, share_id: UUID, owner: UUID
) -> asyncpg.Record | None:
    return await pool.fetchrow(
        f"WITH s AS (UPDATE shares s SET state = '{state}', ended_at = now()"
        f" WHERE s.id = $1 AND {condition} AND s.state IN ('pending', 'active')"
        " RETURNING s.*)"
        f" SELECT {_WITH_PEOPLE.replace('FROM shares s', 'FROM s')}",
        share_id,
        owner,
    )
