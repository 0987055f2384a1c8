"""Operating the embedded PostgreSQL: backups, point-in-time restore, a standby, failover.

The mechanisms live in ``storage.backup`` and ``storage.standby``; this module applies the
settings to them and does the steps an operator would otherwise do by hand (swap the data
directory after a restore, wait for recovery to finish). The ``vigil db`` commands call it.
"""

from __future__ import annotations

import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from cluster.settings import Settings
from storage.backup import (
    BackupInfo,
    apply_retention,
    archive_settings,
    base_backup,
    finish_restore,
    prepare_restore,
    record_backup,
)
from storage.embedded import EmbeddedPostgres, EmbeddedPostgresError, free_port
from storage.standby import clone_standby, in_recovery, synchronous_settings


def _key(settings: Settings) -> str | None:
    key = settings.backup_encryption_key
    return key.get_secret_value() if key is not None else None


def embedded_database(settings: Settings) -> EmbeddedPostgres:
    """The embedded PostgreSQL of these settings (not started), configured as a primary."""
    return configure_primary(
        EmbeddedPostgres(settings.data_dir / "postgres", port=settings.db_port), settings
    )


def database_url(settings: Settings) -> str:
    """The configured database URL, or the embedded server's (without starting it)."""
    return settings.database_url or embedded_database(settings).url()


def configure_primary(server: EmbeddedPostgres, settings: Settings) -> EmbeddedPostgres:
    """Add WAL archiving and synchronous standby settings to ``server`` as configured."""
    if settings.backup_target:
        server.extra_settings |= archive_settings(
            server,
            settings.backup_target,
            _key(settings),
            timeout_s=settings.backup_archive_timeout_s,
        )
    if settings.synchronous_standby:
        server.extra_settings |= synchronous_settings()
    return server


def _require_target(settings: Settings) -> str:
    if not settings.backup_target:
        raise ValueError("set VIGIL_BACKUP_TARGET (a directory) to back up and restore")
    return settings.backup_target


def run_backup(settings: Settings, database_url: str) -> tuple[BackupInfo, list[str]]:
    """Take a base backup, record it in ``backups`` and apply retention; returns the backup
    and the archive objects retention deleted. A failure is recorded too, then raised."""
    target = _require_target(settings)
    started_at = datetime.now(UTC)
    try:
        info = base_backup(database_url, target, _key(settings))
    except Exception as exc:
        record_backup(database_url, target, started_at, None, error=str(exc)[:2000])
        raise
    record_backup(database_url, target, started_at, info)
    return info, apply_retention(target, settings.backup_keep)


def restore_embedded(
    settings: Settings, primary: EmbeddedPostgres, to_time: datetime, timeout_s: float = 600
) -> tuple[BackupInfo, Path]:
    """Restore the embedded database to ``to_time``: rebuild it in a new data directory,
    replay the archive, then swap it in and start it. The replaced cluster is kept aside
    (returned path) until the operator removes it."""
    target = _require_target(settings)
    staging = EmbeddedPostgres(
        primary.data_dir.with_name(primary.data_dir.name + ".restoring"), port=free_port()
    )
    if staging.data_dir.exists():
        shutil.rmtree(staging.data_dir)
    staging.prepare_dirs()
    shutil.copy2(primary.password_file, staging.password_file)
    staging.prepare_dirs()
    info = prepare_restore(target, _key(settings), to_time, staging)
    # the restored server archives its new timeline; it waits for no standby
    staging.extra_settings |= archive_settings(staging, target, _key(settings))
    staging.start(timeout_s=timeout_s)
    try:
        wait_writable(staging, timeout_s)
    finally:
        staging.stop()
    finish_restore(staging.pgdata)
    primary.stop()
    aside = primary.data_dir / f"pgdata.before-restore-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    if primary.pgdata.exists():
        primary.pgdata.rename(aside)
    staging.pgdata.rename(primary.pgdata)
    shutil.rmtree(staging.data_dir)
    primary.start()
    return info, aside


def wait_writable(server: EmbeddedPostgres, timeout_s: float) -> None:
    """Wait until ``server`` has left recovery (promoted); raise with its log if it stopped."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not server.status().running:
            raise EmbeddedPostgresError(
                f"the server stopped during recovery; see {server.log_file}:\n"
                + "\n".join(server.log_file.read_text(errors="replace").splitlines()[-15:])
            )
        try:
            if not in_recovery(server.url()):
                return
        except psycopg.OperationalError:
            pass  # still starting up or replaying
        time.sleep(0.5)
    raise EmbeddedPostgresError(f"recovery did not finish within {timeout_s:.0f} s")


def standby_server(settings: Settings) -> EmbeddedPostgres:
    """The embedded standby: its own data directory and port beside the primary's."""
    return EmbeddedPostgres(settings.data_dir / "postgres-standby", port=settings.standby_port)


def start_standby(settings: Settings, primary: EmbeddedPostgres) -> EmbeddedPostgres:
    """Clone the running primary into the standby (first time) and start it streaming."""
    standby = standby_server(settings)
    if not (standby.pgdata / "PG_VERSION").exists():
        clone_standby(primary, standby)
    standby.start()
    return standby


def promote_standby(settings: Settings) -> EmbeddedPostgres:
    """Promote the standby to primary (after the primary is lost)."""
    standby = standby_server(settings)
    standby.promote()
    return standby
