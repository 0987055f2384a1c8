"""Nightscout sites: the site of a profile, its access tokens, and the Nightscout documents
Vigil keeps as sent (devicestatus, mbg and cal entries). Glucose entries themselves are
readings (storage.readings) and treatments are events (storage.events)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg

UPLOADER_SERIAL = "nightscout-uploader"
_READING = (
    "r.ts, r.value, r.direction, r.rate_per_min, d.serial"
    " FROM readings r JOIN devices d ON d.id = r.device_id"
)


@dataclass(frozen=True, slots=True)
class Site:
    profile_id: UUID
    site_id: str
    secret_hash: bytes
    device_id: UUID
    manager_id: UUID
    timezone: str


async def put_site(
    pool: asyncpg.Pool, profile_id: UUID, new_site_id: str, secret_hash: bytes, device_id: UUID
) -> str:
    """Turn the site on, or rotate its secret (the site id stays); returns the site id."""
    return await pool.fetchval(
        "INSERT INTO nightscout_sites (profile_id, site_id, secret_hash, device_id)"
        " VALUES ($1, $2, $3, $4) ON CONFLICT (profile_id) DO UPDATE"
        " SET secret_hash = EXCLUDED.secret_hash, rotated_at = now() RETURNING site_id",
        profile_id,
        new_site_id,
        secret_hash,
        device_id,
    )


async def delete_site(pool: asyncpg.Pool, profile_id: UUID) -> bool:
    """Turn the site off (its tokens go with it); readings and events stay."""
    status = await pool.execute("DELETE FROM nightscout_sites WHERE profile_id = $1", profile_id)
    return status.endswith(" 1")


async def find_site(pool: asyncpg.Pool, site_id: str) -> Site | None:
    """The site while its profile's manager is an active user."""
    row = await pool.fetchrow(
        "SELECT s.profile_id, s.site_id, s.secret_hash, s.device_id, p.manager_id, p.timezone"
        " FROM nightscout_sites s JOIN profiles p ON p.id = s.profile_id"
        " JOIN users u ON u.id = p.manager_id AND u.disabled_at IS NULL WHERE s.site_id = $1",
        site_id,
    )
    return None if row is None else Site(**dict(row))


class NoSite(Exception):
    """The profile has no Nightscout site."""


async def add_token(
    pool: asyncpg.Pool, profile_id: UUID, name: str, token_hash: bytes, can_write: bool
) -> asyncpg.Record:
    try:
        return await pool.fetchrow(
            "INSERT INTO nightscout_tokens (profile_id, name, token_hash, can_write)"
            " VALUES ($1, $2, $3, $4) RETURNING id, name, can_write, created_at",
            profile_id,
            name,
            token_hash,
            can_write,
        )
    except asyncpg.ForeignKeyViolationError as exc:
        raise NoSite(profile_id) from exc


async def list_tokens(pool: asyncpg.Pool, profile_id: UUID) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT id, name, can_write, created_at FROM nightscout_tokens WHERE profile_id = $1"
        " ORDER BY created_at, id",
        profile_id,
    )


async def delete_token(pool: asyncpg.Pool, profile_id: UUID, token_id: UUID) -> bool:
    status = await pool.execute(
        "DELETE FROM nightscout_tokens WHERE profile_id = $1 AND id = $2", profile_id, token_id
    )
    return status.endswith(" 1")


async def find_token(
    pool: asyncpg.Pool, profile_id: UUID, token_hash: bytes
) -> asyncpg.Record | None:
    """The site's token (id, can_write) with this hash; None when it is not the site's."""
    return await pool.fetchrow(
        "SELECT id, can_write FROM nightscout_tokens WHERE profile_id = $1 AND token_hash = $2",
        profile_id,
        token_hash,
    )


@dataclass(frozen=True, slots=True)
class Window:
    """A time filter: bounds with their inclusiveness, and how many rows (newest first)."""

    lo: datetime | None = None
    lo_inclusive: bool = True
    hi: datetime | None = None
    hi_inclusive: bool = True
    limit: int = 10

    def sql(self, column: str, first_arg: int) -> tuple[str, list[Any]]:
        """`` AND column > $n ...`` for the bounds set, numbered from ``first_arg``."""
        where, args = "", []
        lo_op = ">=" if self.lo_inclusive else ">"
        hi_op = "<=" if self.hi_inclusive else "<"
        for bound, op in ((self.lo, lo_op), (self.hi, hi_op)):
            if bound is not None:
                args.append(bound)
                where += f" AND {column} {op} ${first_arg + len(args) - 1}"
        return where, args


async def glucose_readings(
    pool: asyncpg.Pool, profile_id: UUID, window: Window
) -> list[asyncpg.Record]:
    """Readings of the profile's glucose devices in the window, newest first."""
    where, args = window.sql("r.ts", 2)
    return await pool.fetch(
        f"SELECT {_READING} WHERE d.profile_id = $1 AND d.kind = 'glucose'{where}"
        f" ORDER BY r.ts DESC LIMIT ${2 + len(args)}",
        profile_id,
        *args,
        window.limit,
    )


async def upsert_entry_documents(
    pool: asyncpg.Pool, profile_id: UUID, docs: list[tuple[str, datetime, dict]]
) -> list[UUID]:
    """Store mbg / cal entries (type, date, document); the same type and date replaces."""
    async with pool.acquire() as conn, conn.transaction():
        ids = []
        for kind, date, doc in docs:
            ids.append(
                await conn.fetchval(
                    "INSERT INTO nightscout_documents (profile_id, collection, type, date, doc)"
                    " VALUES ($1, 'entries', $2, $3, $4::jsonb)"
                    " ON CONFLICT (profile_id, collection, type, date) WHERE collection = 'entries'"
                    " DO UPDATE SET doc = EXCLUDED.doc RETURNING id",
                    profile_id,
                    kind,
                    date,
                    json.dumps(doc),
                )
            )
        return ids


async def insert_devicestatus(
    pool: asyncpg.Pool, profile_id: UUID, docs: list[tuple[datetime, dict]]
) -> list[UUID]:
    async with pool.acquire() as conn, conn.transaction():
        return [
            await conn.fetchval(
                "INSERT INTO nightscout_documents (profile_id, collection, type, date, doc)"
                " VALUES ($1, 'devicestatus', 'devicestatus', $2, $3::jsonb) RETURNING id",
                profile_id,
                date,
                json.dumps(doc),
            )
            for date, doc in docs
        ]


async def documents(
    pool: asyncpg.Pool, profile_id: UUID, collection: str, types: list[str] | None, window: Window
) -> list[asyncpg.Record]:
    """Stored documents of a collection in the window, newest first."""
    where, args = window.sql("date", 4)
    rows = await pool.fetch(
        "SELECT id, type, date, doc, created_at FROM nightscout_documents"
        " WHERE profile_id = $1 AND collection = $2 AND ($3::text[] IS NULL OR type = ANY ($3))"
        f"{where} ORDER BY date DESC LIMIT ${4 + len(args)}",
        profile_id,
        collection,
        types,
        *args,
        window.limit,
    )
    return rows


def decode_doc(value: Any) -> dict:
    return json.loads(value) if isinstance(value, str) else dict(value or {})


async def treatments(pool: asyncpg.Pool, profile_id: UUID, window: Window) -> list[dict]:
    """The profile's events (from any client) in the window, newest first, with the
    Nightscout document of those that came through the site."""
    where, args = window.sql("ts", 2)
    rows = await pool.fetch(
        "SELECT id, kind, ts, end_ts, details, note, nightscout, created_at FROM events"
        f" WHERE profile_id = $1{where} ORDER BY ts DESC, id LIMIT ${2 + len(args)}",
        profile_id,
        *args,
        window.limit,
    )
    out = []
    for r in rows:
        row = dict(r)
        row["details"] = decode_doc(row["details"])
        row["nightscout"] = None if r["nightscout"] is None else decode_doc(r["nightscout"])
        out.append(row)
    return out


async def replace_treatment(
    pool: asyncpg.Pool,
    profile_id: UUID,
    event_id: UUID,
    fields: dict[str, Any],
    doc: dict,
) -> bool:
    """Replace an event with an edited Nightscout treatment (PUT treatments)."""
    status = await pool.execute(
        "UPDATE events SET kind = $3, ts = $4, end_ts = $5, details = $6::jsonb, note = $7,"
        " nightscout = $8::jsonb, updated_at = now() WHERE profile_id = $1 AND id = $2",
        profile_id,
        event_id,
        fields["kind"],
        fields["ts"],
        fields["end_ts"],
        json.dumps(fields["details"]),
        fields["note"],
        json.dumps(doc),
    )
    return status.endswith(" 1")
