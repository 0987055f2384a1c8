"""Who may do what with a profile's data. Checked on every request: no grant is cached,
so a revoked share is refused on the follower's very next request."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg

from storage.batches import by_ordinality

SCOPES = ("readings", "alerts", "manage")
MANAGER_SCOPES = frozenset(SCOPES)


@dataclass(frozen=True, slots=True)
class Grant:
    """The caller's relation to a profile: its manager, or a follower with scopes."""

    profile_id: UUID
    is_manager: bool
    scopes: frozenset[str]

    def allows(self, scope: str) -> bool:
        return self.is_manager or scope in self.scopes


def grant_of(row: asyncpg.Record) -> Grant | None:
    if row["is_manager"]:
        return Grant(row["profile_id"], True, MANAGER_SCOPES)
    if row["scopes"] is None:
        return None
    return Grant(row["profile_id"], False, frozenset(row["scopes"]))


# The caller ({user}) must be an active user; a share counts only while it is active.
_RELATION = """
    p.id AS profile_id, p.manager_id = {user} AS is_manager, s.scopes
    FROM {source}
    JOIN users u ON u.id = {user} AND u.disabled_at IS NULL
    LEFT JOIN shares s ON s.profile_id = p.id AND s.follower_id = {user} AND s.state = 'active'
"""


def device_relation(user: str) -> str:
    """The device's columns and the caller's (``user``: a parameter) relation to its
    profile, for queries that check the grant in the statement that reads."""
    relation = _RELATION.format(
        source="devices d JOIN profiles p ON p.id = d.profile_id", user=user
    )
    return f"d.id, d.kind, d.serial, d.model, d.interval_s, d.created_at, {relation}"


async def profile_grant(pool: asyncpg.Pool, user_id: UUID, profile_id: UUID) -> Grant | None:
    """None when the caller has no relation to the profile (or it does not exist)."""
    relation = _RELATION.format(source="profiles p", user="$2")
    row = await pool.fetchrow(f"SELECT {relation} WHERE p.id = $1", profile_id, user_id)
    return None if row is None else grant_of(row)


async def grants(pool: asyncpg.Pool, user_id: UUID) -> list[Grant]:
    """The caller's grant on every profile it manages or follows, in one query."""
    relation = _RELATION.format(source="profiles p", user="$1")
    rows = await pool.fetch(
        f"SELECT {relation} WHERE p.manager_id = $1 OR s.scopes IS NOT NULL ORDER BY p.id",
        user_id,
    )
    return [g for g in map(grant_of, rows) if g is not None]


DeviceGrant = tuple[asyncpg.Record, Grant]


def _device_grant(row: asyncpg.Record | None) -> DeviceGrant | None:
    grant = None if row is None else grant_of(row)
    return None if row is None or grant is None else (row, grant)


async def device_grant(pool: asyncpg.Pool, user_id: UUID, device_id: UUID) -> DeviceGrant | None:
    """The device and the caller's grant on its profile, in one round trip."""
    row = await pool.fetchrow(f"SELECT {device_relation('$2')} WHERE d.id = $1", device_id, user_id)
    return _device_grant(row)


_DEVICE_GRANTS = f"""
SELECT q.n, rel.* FROM unnest($1::uuid[], $2::uuid[]) WITH ORDINALITY AS q(device_id, user_id, n)
CROSS JOIN LATERAL (SELECT {device_relation("q.user_id")} WHERE d.id = q.device_id) rel
"""


async def device_grants(
    pool: asyncpg.Pool, asks: list[tuple[UUID, UUID]]
) -> list[DeviceGrant | None]:
    """:func:`device_grant` for many ``(user_id, device_id)`` pairs, in their order, from
    one statement (``storage.batches``)."""
    rows = await pool.fetch(_DEVICE_GRANTS, [d for _, d in asks], [u for u, _ in asks])
    return [_device_grant(row) for row in by_ordinality(rows, len(asks))]
