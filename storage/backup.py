"""Base backups, WAL archiving and point-in-time restore of a self-run PostgreSQL.

A restore needs two things from the archive: a base backup (``pg_basebackup``, a copy of
the cluster taken while it runs) finished before the wanted time, and every WAL segment
from that backup's start up to the time, which ``archive_command`` keeps pushing (see
:mod:`storage.wal_archive`). Recovery replays the WAL and stops before the first
transaction that committed at or after the wanted time, so the restored database holds
exactly what was committed (and therefore acknowledged) before it.

Layout of the archive::

    base/<label>/base.tar, pg_wal.tar, backup_manifest   the base backup, each sealed
    base/<label>/backup.json                             written last: the backup is complete
    wal/<segment>                                        archived WAL and timeline history

Each ``vigil db backup`` is also recorded in the ``backups`` table, which the metric
``vigil_backup_last_success_timestamp_seconds`` reads.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import tarfile
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg

from storage.embedded import EmbeddedPostgres, find_pg_bindir
from storage.wal_archive import (
    ArchiveConfig,
    ArchiveError,
    ArchiveTarget,
    command,
    open_target,
    read_object,
    write_config,
    write_object,
)

__all__ = [
    "BackupInfo",
    "apply_retention",
    "archive_settings",
    "base_backup",
    "finish_restore",
    "last_backup_success",
    "list_backups",
    "prepare_restore",
    "record_backup",
]

ARCHIVE_CONFIG = "archive.json"
RECOVERY_CONF = "vigil-recovery.conf"
_START_WAL = re.compile(r"^START WAL LOCATION: \S+ \(file ([0-9A-F]{24})\)$", re.MULTILINE)
_SEGMENT = re.compile(r"^[0-9A-F]{24}")


@dataclass(frozen=True)
class BackupInfo:
    """One complete base backup in the archive (its ``backup.json``)."""

    label: str
    started_at: datetime
    finished_at: datetime
    start_wal: str
    size_bytes: int
    encrypted: bool

    def to_json(self) -> bytes:
        data = asdict(self) | {
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
        }
        return json.dumps(data, indent=2).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> BackupInfo:
        data = json.loads(raw)
        data["started_at"] = datetime.fromisoformat(data["started_at"])
        data["finished_at"] = datetime.fromisoformat(data["finished_at"])
        return cls(**data)


# -- archiving --------------------------------------------------------------------------------


def archive_settings(
    server: EmbeddedPostgres, target: str, key: str | None, *, timeout_s: int = 60
) -> dict[str, str]:
    """Server settings that archive every WAL segment to ``target``, at least every
    ``timeout_s`` seconds (which bounds what a restore without a standby can lose).

    Writes the archive config (target and key, mode 0600) into the server's data directory
    and makes the target directory writable by the server's user.
    """
    owner = server.owner_ids()
    server.data_dir.mkdir(parents=True, exist_ok=True)
    config_path = server.data_dir / ARCHIVE_CONFIG
    write_config(config_path, ArchiveConfig(target, key), owner)
    _prepare_target_dir(target, owner)
    other = owner is not None
    _check_as_server(command("check", config_path, as_other_user=other), owner)
    return {
        "archive_mode": "on",
        "archive_command": _conf_quote(command("push", config_path, as_other_user=other)),
        "archive_timeout": str(timeout_s),
    }


def _check_as_server(shell: str, owner: tuple[int, int] | None) -> None:
    """Run the archive check as the server's user: fail now, clearly, rather than have
    PostgreSQL retry a failing archive_command (and keep WAL) silently."""
    result = subprocess.run(
        shell,
        shell=True,
        capture_output=True,
        text=True,
        check=False,
        user=owner[0] if owner else None,
        group=owner[1] if owner else None,
        extra_groups=[] if owner else None,
        cwd="/",
    )
    if result.returncode != 0:
        raise ArchiveError(
            f"the WAL archive command does not work as the database server's user: "
            f"{(result.stderr or result.stdout).strip()[-500:]}"
        )


def _prepare_target_dir(target: str, owner: tuple[int, int] | None) -> None:
    if target.startswith("s3://"):
        return  # an object store: nothing to create or own
    root = Path(target.removeprefix("file://"))
    for path in (root, root / "wal"):
        path.mkdir(parents=True, exist_ok=True)
        if owner is not None:
            os.chown(path, *owner)


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# -- base backups -----------------------------------------------------------------------------


def base_backup(url: str, target: str, key: str | None) -> BackupInfo:
    """Take a base backup of the server at ``url`` into the archive; returns what it stored.

    The backup carries the WAL needed to make it consistent on its own (``-X stream``);
    restoring to a later time also needs the archived WAL.
    """
    archive = open_target(target)
    started_at = datetime.now(UTC)
    label = started_at.strftime("%Y%m%dT%H%M%S%fZ")
    with tempfile.TemporaryDirectory(prefix="vigil-backup-") as tmp:
        _run_basebackup(url, Path(tmp), label)
        start_wal = _start_wal(Path(tmp) / "base.tar")
        size = 0
        for path in sorted(Path(tmp).iterdir()):
            size += _put_sealed(archive, f"base/{label}/{path.name}", path, key)
    info = BackupInfo(label, started_at, datetime.now(UTC), start_wal, size, key is not None)
    archive.put(f"base/{label}/backup.json", io.BytesIO(info.to_json()))
    return info


def _run_basebackup(url: str, out: Path, label: str) -> None:
    args = [
        str(find_pg_bindir() / "pg_basebackup"),
        "--dbname",
        url,
        "--pgdata",
        str(out),
        "--format",
        "tar",
        "--wal-method",
        "stream",
        "--checkpoint",
        "fast",
        "--label",
        f"vigil {label}",
        "--no-password",
    ]
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    if result.returncode != 0:
        raise ArchiveError(f"pg_basebackup failed: {result.stderr.strip()}")


def _start_wal(base_tar: Path) -> str:
    with tarfile.open(base_tar) as tar:
        member = tar.extractfile("backup_label")
        text = member.read().decode() if member else ""
    match = _START_WAL.search(text)
    if match is None:
        raise ArchiveError("the base backup has no readable backup_label")
    return match[1]


def _put_sealed(archive: ArchiveTarget, name: str, path: Path, key: str | None) -> int:
    with tempfile.TemporaryFile() as sealed, path.open("rb") as src:
        write_object(src, sealed, key)
        size = sealed.tell()
        sealed.seek(0)
        archive.put(name, sealed)
    return size


def list_backups(target: str) -> list[BackupInfo]:
    """Complete base backups in the archive, oldest first."""
    archive = open_target(target)
    found = []
    for name in archive.list("base/"):
        if name.endswith("/backup.json"):
            raw = io.BytesIO()
            archive.get(name, raw)
            found.append(BackupInfo.from_json(raw.getvalue()))
    return sorted(found, key=lambda b: b.finished_at)


def apply_retention(target: str, keep: int) -> list[str]:
    """Delete all but the ``keep`` newest base backups and the WAL only they needed;
    returns the deleted names. Timeline history files are always kept."""
    if keep < 1:
        raise ValueError("keep at least one base backup")
    backups = list_backups(target)
    if len(backups) <= keep:
        return []
    archive = open_target(target)
    # backup.json first: a backup deleted halfway is never taken for a complete one
    doomed = [f"base/{old.label}/backup.json" for old in backups[:-keep]] + [
        name
        for old in backups[:-keep]
        for name in archive.list(f"base/{old.label}/")
        if not name.endswith("/backup.json")
    ]
    oldest_needed = backups[-keep].start_wal[8:]  # log and segment numbers; any timeline
    for name in archive.list("wal/"):
        segment = _SEGMENT.match(name.removeprefix("wal/"))
        if segment and segment[0][8:] < oldest_needed:
            doomed.append(name)
    for name in doomed:
        archive.delete(name)
    return doomed


# -- point-in-time restore --------------------------------------------------------------------


def prepare_restore(
    target: str, key: str | None, to_time: datetime, server: EmbeddedPostgres
) -> BackupInfo:
    """Fill ``server.pgdata`` (which must not exist) from the newest base backup finished
    before ``to_time``, set to replay the archived WAL up to ``to_time`` and then promote.

    Start ``server`` afterwards and wait until it leaves recovery; then
    :func:`finish_restore`.
    """
    if to_time.tzinfo is None:
        raise ValueError("the restore time needs a time zone")
    if server.pgdata.exists():
        raise ArchiveError(f"{server.pgdata} already exists; restore into a new data directory")
    candidates = [b for b in list_backups(target) if b.finished_at <= to_time]
    if not candidates:
        raise ArchiveError(f"no base backup finished before {to_time.isoformat()}")
    chosen = candidates[-1]
    archive = open_target(target)
    server.prepare_dirs()
    server.pgdata.mkdir(mode=0o700)
    _extract(archive, f"base/{chosen.label}/base.tar", key, server.pgdata)
    _extract(archive, f"base/{chosen.label}/pg_wal.tar", key, server.pgdata / "pg_wal")
    config_path = server.data_dir / ARCHIVE_CONFIG
    write_config(config_path, ArchiveConfig(target, key), server.owner_ids())
    settings = {
        "restore_command": command(
            "fetch", config_path, as_other_user=server.owner_ids() is not None
        ),
        "recovery_target_time": to_time.isoformat(),
        "recovery_target_inclusive": "off",
        "recovery_target_action": "promote",
        "recovery_target_timeline": "latest",
    }
    lines = [f"{name} = {_conf_quote(value)}" for name, value in settings.items()]
    (server.pgdata / RECOVERY_CONF).write_text("\n".join(lines) + "\n")
    with (server.pgdata / "postgresql.conf").open("a") as conf:
        conf.write(f"include_if_exists = '{RECOVERY_CONF}'\n")
    (server.pgdata / "recovery.signal").touch()
    _chown_tree(server.pgdata, server.owner_ids())
    return chosen


def _extract(archive: ArchiveTarget, name: str, key: str | None, into: Path) -> None:
    with tempfile.TemporaryFile() as sealed, tempfile.TemporaryFile() as plain:
        if not archive.get(name, sealed):
            raise ArchiveError(f"{name} is missing from the archive")
        sealed.seek(0)
        read_object(sealed, plain, key)
        plain.seek(0)
        into.mkdir(mode=0o700, exist_ok=True)
        with tarfile.open(fileobj=plain) as tar:
            tar.extractall(into, filter="tar")


def _chown_tree(root: Path, owner: tuple[int, int] | None) -> None:
    if owner is None:
        return
    for parent, dirs, files in os.walk(root):
        for path in (parent, *(os.path.join(parent, n) for n in dirs + files)):
            os.chown(path, *owner, follow_symlinks=False)


def finish_restore(pgdata: Path) -> None:
    """Drop the recovery settings once the restored server has been promoted, so that a
    standby cloned from it later does not inherit a recovery target."""
    (pgdata / RECOVERY_CONF).unlink(missing_ok=True)
    conf = pgdata / "postgresql.conf"
    text = conf.read_text().replace(f"include_if_exists = '{RECOVERY_CONF}'\n", "")
    conf.write_text(text)


# -- the record the metrics read --------------------------------------------------------------


def record_backup(
    url: str,
    target: str,
    started_at: datetime,
    info: BackupInfo | None,
    error: str | None = None,
) -> None:
    """One row in ``backups`` per run: succeeded with its label and size, or failed."""
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO backups (label, target, started_at, finished_at, succeeded,"
            " size_bytes, error) VALUES (%s, %s, %s, now(), %s, %s, %s)",
            (
                info.label if info else "",
                target,
                started_at,
                info is not None,
                info.size_bytes if info else None,
                error,
            ),
        )


def last_backup_success(url: str) -> datetime | None:
    """When the newest successful backup finished, or None."""
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT max(finished_at) FROM backups WHERE succeeded").fetchone()
    return row[0] if row else None
