"""Retention: the newest N base backups are kept, with exactly the WAL they still need."""

from __future__ import annotations

import io
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from storage.backup import BackupInfo, apply_retention, list_backups
from storage.wal_archive import DirectoryTarget


def make_archive(root: Path, starts: list[str], segments: list[str]) -> None:
    target = DirectoryTarget(root)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    for day, start_wal in enumerate(starts):
        label = f"2026110{day + 1}T000000Z"
        info = BackupInfo(
            label,
            t0 + timedelta(days=day),
            t0 + timedelta(days=day, minutes=5),
            start_wal,
            10,
            False,
        )
        target.put(f"base/{label}/base.tar", io.BytesIO(b"tar"))
        target.put(f"base/{label}/backup.json", io.BytesIO(info.to_json()))
    for name in segments:
        target.put(f"wal/{name}", io.BytesIO(b"wal"))


def test_keeps_the_newest_backups_and_the_wal_from_the_oldest_kept_one(tmp_path: Path) -> None:
    starts = ["000000010000000000000002", "000000010000000000000010", "000000020000000000000020"]
    segments = [
        "000000010000000000000002",
        "000000010000000000000002.00000028.backup",
        "00000001000000000000000F",
        "000000010000000000000010",
        "000000010000000000000015",  # timeline 1, after the kept backup's start: needed
        "00000002.history",  # timeline history: always kept
        "000000020000000000000016",
        "000000020000000000000020",
    ]
    make_archive(tmp_path, starts, segments)
    deleted = apply_retention(str(tmp_path), keep=2)
    assert [b.start_wal for b in list_backups(str(tmp_path))] == starts[1:]
    left = sorted(p.name for p in (tmp_path / "wal").iterdir())
    assert left == sorted(segments[3:])
    assert deleted[0] == "base/20261101T000000Z/backup.json"  # first: never half a "complete" one
    assert not (tmp_path / "base" / "20261101T000000Z" / "base.tar").exists()
    assert apply_retention(str(tmp_path), keep=2) == []  # nothing more to do


def test_keep_must_be_at_least_one(tmp_path: Path) -> None:
    make_archive(tmp_path, ["000000010000000000000002"], ["000000010000000000000002"])
    with pytest.raises(ValueError, match="at least one"):
        apply_retention(str(tmp_path), keep=0)
    assert len(list_backups(str(tmp_path))) == 1
