"""Migrations apply in order, once, and refuse edited history."""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import psycopg
import pytest

import storage.migrate
from storage.migrate import MIGRATIONS_DIR, MigrationError, backend, discover, migrate

_VARIANT = {False: "postgres", True: "timescale"}


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
    variant = backend(database_url)
    assert [v for v, _ in rows] == [m.version for m in discover(timescale=variant == "timescale")]
    assert dict(rows)[2] == variant
    # Partitioned on plain PostgreSQL; a hypertable (a plain table with chunks) on TimescaleDB.
    assert kind == ("p" if variant == "postgres" else "r")


def test_an_edited_applied_migration_is_refused(database_url: str, tmp_path: Path) -> None:
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS_DIR, copy)
    first = sorted(copy.glob("0001_*.sql"))[0]
    first.write_text(first.read_text() + "\n-- edited\n")
    with pytest.raises(MigrationError, match="edited after it was applied"):
        migrate(database_url, copy)


def test_weekly_partitions_are_created_for_any_time(db, database_url: str) -> None:
    if backend(database_url) == "timescale":
        # TimescaleDB makes a chunk as rows arrive: no partition function is installed.
        assert (
            db.execute("SELECT to_regproc('vigil_ensure_readings_partitions')").fetchone()[0]
            is None
        )
        return
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


def test_rollup_refresh_covers_the_whole_history(db, database_url: str) -> None:
    """On TimescaleDB both continuous aggregates are refreshed from the first reading on
    (start_offset NULL); plain PostgreSQL has no rollups, so charts read the readings."""
    rollups = db.execute(
        "SELECT count(*) FROM pg_class WHERE relname IN ('readings_5m', 'readings_1h')"
    ).fetchone()[0]
    if backend(database_url) == "postgres":
        assert rollups == 0
        return
    jobs = db.execute(
        "SELECT view_name, config->>'start_offset' FROM timescaledb_information.jobs j"
        " JOIN timescaledb_information.continuous_aggregates c"
        " ON j.hypertable_name = c.materialization_hypertable_name ORDER BY 1"
    ).fetchall()
    assert rollups == 2
    assert jobs == [("readings_1h", None), ("readings_5m", None)]


def _empty_database(pg_url: str) -> str:
    name = f"pin_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return pg_url.rsplit("/", 1)[0] + f"/{name}"


def _variant_pair(directory: Path, version: int, name: str) -> None:
    for variant in ("postgres", "timescale"):
        (directory / f"{version:04d}_{name}.{variant}.sql").write_text(
            f"CREATE TABLE IF NOT EXISTS chosen (version int, variant text);"
            f" INSERT INTO chosen VALUES ({version}, '{variant}');"
        )


@pytest.mark.parametrize(("first", "later"), [(False, True), (True, False)])
def test_later_variants_follow_the_one_recorded_for_readings(
    pg, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first: bool, later: bool
) -> None:
    """TimescaleDB installed (or lost) after 0002 ran: later pairs still take 0002's variant.
    The extension cannot be installed here, so its detection is what changes between runs."""
    url = _empty_database(pg.url())
    migrations = tmp_path / "migrations"
    migrations.mkdir()
    _variant_pair(migrations, 2, "readings")
    monkeypatch.setattr(storage.migrate, "timescale_available", lambda conn: first)
    assert [m.variant for m in migrate(url, migrations)] == [_VARIANT[first]]
    assert backend(url) == _VARIANT[first]

    _variant_pair(migrations, 42, "rollups")
    monkeypatch.setattr(storage.migrate, "timescale_available", lambda conn: later)
    assert [m.variant for m in migrate(url, migrations)] == [_VARIANT[first]]
    with psycopg.connect(url) as conn:
        chosen = conn.execute("SELECT version, variant FROM chosen ORDER BY 1").fetchall()
    assert chosen == [(2, _VARIANT[first]), (42, _VARIANT[first])]
