"""Devices: registration, listing, and what a device actor needs to know about its device."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import psycopg

_COLUMNS = "d.id, d.profile_id, d.kind, d.serial, d.model, d.interval_s, d.created_at"


class DuplicateSerial(Exception):
    """The profile already has a device with this serial number."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: UUID
    profile_id: UUID
    kind: str
    interval_s: int


async def create_device(
    pool: asyncpg.Pool,
    profile_id: UUID,
    kind: str,
    serial: str,
    model: str | None,
    interval_s: int,
) -> asyncpg.Record:
    try:
        return await pool.fetchrow(
            "INSERT INTO devices AS d (profile_id, kind, serial, model, interval_s)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            profile_id,
            kind,
            serial,
            model,
            interval_s,
        )
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateSerial(serial) from exc


async def find_or_create(
    pool: asyncpg.Pool, profile_id: UUID, kind: str, serial: str, model: str, interval_s: int
) -> UUID:
    """The profile's device with this serial, registered on first use (the device that
    Nightscout uploads or FHIR submissions arrive through)."""
    query = "SELECT id FROM devices WHERE profile_id = $1 AND serial = $2"
    found = await pool.fetchval(query, profile_id, serial)
    if found is not None:
        return found
    try:
        row = await create_device(pool, profile_id, kind, serial, model, interval_s)
    except DuplicateSerial:  # registered concurrently
        return await pool.fetchval(query, profile_id, serial)
    return row["id"]


async def list_devices(
    pool: asyncpg.Pool, user_id: UUID, profile_id: UUID | None = None
) -> list[asyncpg.Record]:
    """Devices of the profiles the user manages or follows with the `readings` scope."""
    return await pool.fetch(
        f"SELECT {_COLUMNS} FROM devices d JOIN profiles p ON p.id = d.profile_id"
        " WHERE ($2::uuid IS NULL OR d.profile_id = $2) AND (p.manager_id = $1 OR EXISTS ("
        "   SELECT 1 FROM shares s WHERE s.profile_id = p.id AND s.follower_id = $1"
        "   AND s.state = 'active' AND 'readings' = ANY (s.scopes)))"
        " ORDER BY d.created_at, d.id",
        user_id,
        profile_id,
    )


async def load_device(conn: psycopg.AsyncConnection, device_id: UUID) -> DeviceInfo | None:
    cur = await conn.execute(
        "SELECT id, profile_id, kind, interval_s FROM devices WHERE id = %s", (device_id,)
    )
    row = await cur.fetchone()
    return None if row is None else DeviceInfo(*row)


async def recently_active_devices(conn: psycopg.AsyncConnection, within_s: float) -> list[UUID]:
    """Devices whose stream state was written within the last ``within_s`` seconds."""
    cur = await conn.execute(
        "SELECT device_id FROM device_state WHERE updated_at > now() - %s * interval '1 second'",
        (within_s,),
    )
    return [r[0] for r in await cur.fetchall()]
