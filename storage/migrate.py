"""Numbered SQL migrations, applied in order and recorded.

A migration is ``NNNN_name.sql`` (for every backend) or a pair of variants
``NNNN_name.postgres.sql`` / ``NNNN_name.timescale.sql``, of which the one matching the
server is applied (detected once, when ``0002_readings`` runs; every later pair follows the
variant recorded for it). Applied versions are recorded in ``schema_migrations`` with a checksum;
re-running is a no-op, and an applied file that has since been edited is an error.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

import psycopg

from storage.features import timescale_available

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_NAME = re.compile(
    r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+?)(?:\.(?P<variant>postgres|timescale))?\.sql$"
)
READINGS_VERSION = 2  # the readings table: its variant pins every later variant
_LOCK_KEY = 7_311_001  # advisory lock held while migrating, so two starters never race


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str
    variant: str | None
    path: Path

    @property
    def sql(self) -> str:
        return self.path.read_text(encoding="utf-8")

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.path.read_bytes()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR, *, timescale: bool) -> list[Migration]:
    """The migrations to apply on this backend, in version order."""
    chosen: dict[int, Migration] = {}
    wanted = "timescale" if timescale else "postgres"
    for path in sorted(directory.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file name not understood: {path.name}")
        variant = match["variant"]
        if variant not in (None, wanted):
            continue
        migration = Migration(int(match["version"]), match["name"], variant, path)
        if migration.version in chosen:
            raise MigrationError(f"two migrations share version {migration.version:04d}")
        chosen[migration.version] = migration
    return [chosen[v] for v in sorted(chosen)]


def migrate(url: str, directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """Apply every pending migration; returns those applied by this call."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.execute(
                """CREATE TABLE IF NOT EXISTS schema_migrations (
                       version    integer PRIMARY KEY,
                       name       text NOT NULL,
                       variant    text,
                       checksum   text NOT NULL,
                       applied_at timestamptz NOT NULL DEFAULT now())"""
            )
            applied = {
                row[0]: row[1]
                for row in conn.execute("SELECT version, checksum FROM schema_migrations")
            }
            plan = discover(directory, timescale=_timescale(conn))
            done: list[Migration] = []
            for migration in plan:
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.path.name} was edited after it was applied"
                        )
                    continue
                with conn.transaction():
                    conn.execute(migration.sql)
                    conn.execute(
                        "INSERT INTO schema_migrations (version, name, variant, checksum)"
                        " VALUES (%s, %s, %s, %s)",
                        (migration.version, migration.name, migration.variant, migration.checksum),
                    )
                done.append(migration)
            return done
        finally:
            conn.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))


def _recorded_variant(conn: psycopg.Connection) -> str | None:
    """The readings variant recorded when migration 0002 ran; None before it ran."""
    row = conn.execute(
        "SELECT variant FROM schema_migrations WHERE version = %s", (READINGS_VERSION,)
    ).fetchone()
    return None if row is None else row[0] or "postgres"


def _timescale(conn: psycopg.Connection) -> bool:
    """Which variants to apply: pinned by what 0002 recorded (installing TimescaleDB later,
    or losing it, must not mix variants); detected only on a database 0002 has not touched."""
    recorded = _recorded_variant(conn)
    if recorded is None:
        return timescale_available(conn)
    return recorded == "timescale"


def backend(url: str) -> str:
    """'timescale' or 'postgres': which variant of the readings table this database holds."""
    with psycopg.connect(url) as conn:
        return _recorded_variant(conn) or "postgres"
