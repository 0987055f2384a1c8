"""Where on the body a temperature device sat, by period (a body site changes rarely).

A batch of readings that names its body site opens a new period at its first reading when
the site in effect there differs; readings are then read with the site of their period.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from datetime import datetime
from uuid import UUID

import asyncpg


async def record(pool: asyncpg.Pool, device_id: UUID, since: datetime, body_site: str) -> bool:
    """The device sits at ``body_site`` from ``since`` on; True when that opened a period
    (False: the site already in effect there)."""
    status = await pool.execute(
        "INSERT INTO device_body_sites (device_id, since, body_site)"
        " SELECT $1, $2, $3 WHERE ("
        "   SELECT body_site FROM device_body_sites WHERE device_id = $1 AND since <= $2"
        "   ORDER BY since DESC LIMIT 1"
        " ) IS DISTINCT FROM $3"
        " ON CONFLICT (device_id, since) DO UPDATE SET body_site = EXCLUDED.body_site,"
        " recorded_at = now()",
        device_id,
        since,
        body_site,
    )
    return status.endswith(" 1")


class Sites:
    """The periods of one device, to give each reading its site."""

    def __init__(self, rows: Sequence[asyncpg.Record]) -> None:
        self._since = [r["since"] for r in rows]
        self._site = [r["body_site"] for r in rows]

    def at(self, ts: datetime) -> str | None:
        """The site in effect at ``ts`` (None before the first period)."""
        i = bisect_right(self._since, ts)
        return self._site[i - 1] if i else None


async def periods(pool: asyncpg.Pool, device_id: UUID, end: datetime | None = None) -> Sites:
    """The device's periods that begin before ``end`` (all when None), oldest first."""
    rows = await pool.fetch(
        "SELECT since, body_site FROM device_body_sites"
        " WHERE device_id = $1 AND ($2::timestamptz IS NULL OR since < $2) ORDER BY since",
        device_id,
        end,
    )
    return Sites(rows)
