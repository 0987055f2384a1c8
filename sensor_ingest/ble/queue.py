"""The gateway's durable queue: SQLite in WAL mode between the radio and the upload.

A reading enters once per (sensor, session, offset) — the de-duplication key, so a
back-filled record that is already queued or already acknowledged is ignored — and leaves
only when Vigil acknowledged it. Acknowledged rows are kept a while (``keep_acked_s``) so
late repeats are still recognised, and the highest acknowledged offset per (sensor,
session) is kept for good: it is where the next back-fill starts. Disk use is bounded by
``max_readings`` queued rows; beyond it the oldest unacknowledged readings are dropped,
logged and counted (Vigil cannot take them; newer data matters more to a patient).

``session`` is the session start in epoch seconds (CGM) or 0 (thermometers, whose offset is
the reading's own epoch second).
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor TEXT NOT NULL,
    session INTEGER NOT NULL,
    offset_s INTEGER NOT NULL,
    device_id TEXT NOT NULL,
    ts REAL NOT NULL,
    value REAL NOT NULL,
    site TEXT,
    acked_at REAL,
    UNIQUE (sensor, session, offset_s)
);
CREATE INDEX IF NOT EXISTS readings_pending ON readings (device_id, acked_at, ts);
CREATE TABLE IF NOT EXISTS cursors (
    sensor TEXT NOT NULL,
    session INTEGER NOT NULL,
    acked_offset_s INTEGER NOT NULL,
    PRIMARY KEY (sensor, session)
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class QueuedReading:
    """A reading as the gateway decoded it; ``ts`` in UTC epoch seconds, value in Vigil's
    unit (mg/dL, °C)."""

    sensor: str
    session: int
    offset_s: int
    device_id: str
    ts: float
    value: float
    site: str | None = None


@dataclass(frozen=True, slots=True)
class Pending:
    """A queued reading waiting for Vigil, with its row id."""

    id: int
    ts: float
    value: float
    site: str | None = None


class ReadingQueue:
    """One SQLite file; use from one thread (the gateway's event loop)."""

    def __init__(
        self, path: Path | str, *, max_readings: int = 1_000_000, keep_acked_s: float = 86_400
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_readings = max_readings
        self.keep_acked_s = keep_acked_s
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")  # an enqueued reading survives power loss
        self._db.executescript(_SCHEMA)
        self._pending = self._count_pending()  # kept in memory: the bound is checked per put

    def _count_pending(self) -> int:
        sql = "SELECT count(*) FROM readings WHERE acked_at IS NULL"
        return int(self._db.execute(sql).fetchone()[0])

    def close(self) -> None:
        self._db.close()

    # -- counters ------------------------------------------------------------------------

    def _count(self, name: str, n: int = 1) -> None:
        self._db.execute(
            "INSERT INTO counters VALUES (?, ?) "
            "ON CONFLICT (name) DO UPDATE SET value = value + excluded.value",
            (name, n),
        )

    def counter(self, name: str) -> int:
        row = self._db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
        return int(row[0]) if row else 0

    def count(self, name: str, n: int = 1) -> None:
        """Add ``n`` to a persistent counter (decode errors, special values, ...)."""
        with self._db:
            self._count(name, n)

    # -- in ------------------------------------------------------------------------------

    def acked_offset(self, sensor: str, session: int) -> int | None:
        """The highest offset of this session Vigil acknowledged (None: nothing yet)."""
        row = self._db.execute(
            "SELECT acked_offset_s FROM cursors WHERE sensor = ? AND session = ?",
            (sensor, session),
        ).fetchone()
        return None if row is None else int(row[0])

    def latest_session(self, sensor: str) -> int | None:
        """The most recent session of ``sensor`` Vigil acknowledged readings of."""
        row = self._db.execute(
            "SELECT max(session) FROM cursors WHERE sensor = ?", (sensor,)
        ).fetchone()
        return None if row[0] is None else int(row[0])

    def put(self, readings: Iterable[QueuedReading]) -> int:
        """Queue new readings in one transaction; returns how many were new (the rest were
        duplicates: queued before, or at or below the acknowledged offset)."""
        added = 0
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            for r in readings:
                acked = self.acked_offset(r.sensor, r.session)
                if acked is not None and r.offset_s <= acked:
                    continue
                cursor = self._db.execute(
                    "INSERT OR IGNORE INTO readings "
                    "(sensor, session, offset_s, device_id, ts, value, site) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (r.sensor, r.session, r.offset_s, r.device_id, r.ts, r.value, r.site),
                )
                added += cursor.rowcount
            self._count("enqueued", added)
            self._pending += added
            self._enforce_bound()
        return added

    def _enforce_bound(self) -> None:
        over = self.pending_count() - self.max_readings
        if over <= 0:
            return
        self._db.execute(
            "DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE acked_at IS NULL "
            "ORDER BY ts LIMIT ?)",
            (over,),
        )
        self._count("dropped_full", over)
        self._pending -= over
        log.error("gateway queue full (%d): dropped the %d oldest", self.max_readings, over)

    # -- out -----------------------------------------------------------------------------

    def pending_count(self) -> int:
        """Readings waiting for Vigil."""
        return self._pending

    def next_batch(self, device_id: str, limit: int) -> list[Pending]:
        """The oldest unacknowledged readings of one Vigil device."""
        rows = self._db.execute(
            "SELECT id, ts, value, site FROM readings WHERE device_id = ? AND acked_at IS NULL "
            "ORDER BY ts LIMIT ?",
            (device_id, limit),
        )
        return [Pending(*row) for row in rows]

    def ack(self, ids: list[int], *, now: float | None = None) -> None:
        """Vigil stored (or already had) these readings: they leave the queue."""
        now = time.time() if now is None else now
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            marks = ",".join("?" * len(ids))
            acked = self._db.execute(
                f"UPDATE readings SET acked_at = ? WHERE id IN ({marks}) AND acked_at IS NULL",
                [now, *ids],
            ).rowcount
            self._advance_cursors(ids)
            self._count("acked", acked)
            self._pending -= acked
            self._db.execute(
                "DELETE FROM readings WHERE acked_at IS NOT NULL AND acked_at < ?",
                (now - self.keep_acked_s,),
            )

    def _advance_cursors(self, ids: list[int]) -> None:
        marks = ",".join("?" * len(ids))
        self._db.execute(
            "INSERT INTO cursors (sensor, session, acked_offset_s) "
            f"SELECT sensor, session, max(offset_s) FROM readings WHERE id IN ({marks}) "
            "GROUP BY sensor, session "
            "ON CONFLICT (sensor, session) DO UPDATE SET "
            "acked_offset_s = max(acked_offset_s, excluded.acked_offset_s)",
            ids,
        )

    def reject(self, ids: list[int], reason: str) -> None:
        """Vigil refused these readings for good (422): drop them, log and count."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            marks = ",".join("?" * len(ids))
            sql = f"DELETE FROM readings WHERE id IN ({marks}) AND acked_at IS NULL"
            rejected = self._db.execute(sql, ids).rowcount
            self._count("rejected", rejected)
            self._pending -= rejected
        log.error("Vigil rejected %d reading(s) for good: %s", len(ids), reason)
