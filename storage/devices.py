"""Devices: registration, ownership, and what a device actor needs to know about its device."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

import asyncpg
import psycopg

_COLUMNS = "id, owner_id, kind, serial, model, interval_s, created_at"


class DuplicateSerial(Exception):
    """The owner already registered a device with this serial number."""


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: UUID
    owner_id: UUID
    kind: str
    interval_s: int


async def create_device(
    pool: asyncpg.Pool, owner_id: UUID, kind: str, serial: str, model: str | None, interval_s: int
) -> asyncpg.Record:
    try:
        return await pool.fetchrow(
            f"INSERT INTO devices (owner_id, kind, serial, model, interval_s)"
            f" VALUES ($1, $2, $3, $4, $5) RETURNING {_COLUMNS}",
            owner_id,
            kind,
            serial,
            model,
            interval_s,
        )
    except asyncpg.UniqueViolationError as exc:
        raise DuplicateSerial(serial) from exc


async def list_devices(pool: asyncpg.Pool, owner_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        f"SELECT {_COLUMNS} FROM devices WHERE owner_id = $1 ORDER BY created_at, id", owner_id
    )


async def get_owned_device(
    pool: asyncpg.Pool, owner_id: UUID, device_id: UUID
) -> asyncpg.Record | None:
    """The device if ``owner_id`` owns it; None for unknown and foreign devices alike."""
    return await pool.fetchrow(
        f"SELECT {_COLUMNS} FROM devices WHERE id = $1 AND owner_id = $2", device_id, owner_id
    )


async def load_device(conn: psycopg.AsyncConnection, device_id: UUID) -> DeviceInfo | None:
    cur = await conn.execute(
        "SELECT id, owner_id, kind, interval_s FROM devices WHERE id = %s", (device_id,)
    )
    row = await cur.fetchone()
    return None if row is None else DeviceInfo(*row)
