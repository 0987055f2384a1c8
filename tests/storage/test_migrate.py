"""Migrations apply in order, once, and refuse edited history."""

from __future__ import annotations

import shutil
from pathlib import Path

import psycopg
import pytest

from storage.migrate import MIGRATIONS_DIR, MigrationError, discover, migrate


def test_variants_are_chosen_by_backend() -> None:
    plain = discover(timescale=False)
    timescale = discover(timescale=True)
    assert [m.version for m in plain] == [m.version for m in timescale]
    readings_plain = next(m for m in plain if m.name == "readings")
    readings_ts = next(m for m in timescale if m.name == "readings")
    assert readings_plain.variant == "postgres" and "PARTITION BY RANGE" in readings_plain.sql
    assert readings_ts.variant == "timescale" and "create_hypertable" in readings_ts.sql


def test_rerunning_is_a_no_op_and_history_is_recorded(database_url: str) -> None:
    assert migrate(database_url) == []
    with psycopg.connect(database_url) as conn:
        rows = conn.execute("SELECT version, variant FROM schema_migrations ORDER BY 1").fetchall()
        kind = conn.execute("SELECT relkind FROM pg_class WHERE relname = 'readings'").fetchone()[0]
    assert [v for v, _ in rows] == [m.version for m in discover(timescale=False)]
    assert dict(rows)[2] == "postgres"
    assert kind == "p"  # the readings table is partitioned on plain PostgreSQL


def test_an_edited_applied_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    first = sorted(copy.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(database_url, copy)


def test_weekly_partitions_are_created_for_any_time(db) -> None:
    db.execute(
        "SELECT vigil_ensure_readings_partitions('1999-12-30 12:00+00', '2000-01-12 00:00+00')"
    )
    parts = {
        r[0]
        for r in db.execute(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'readings'::regclass"
        )
    }
    assert {"readings_19991227", "readings_20000103", "readings_20000110"} <= parts
    # Idempotent.
    assert (
        db.execute(
            "SELECT vigil_ensure_readings_partitions('2000-01-04 00:00+00', '2000-01-05 00:00+00')"
        ).fetchone()[0]
        == 0
    )
