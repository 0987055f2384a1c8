"""The archive's object format and the archive_command / restore_command program."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from storage.wal_archive import (
    ArchiveConfig,
    ArchiveError,
    DirectoryTarget,
    command,
    fetch,
    generate_key,
    push,
    read_object,
    write_config,
    write_object,
)

# 2.5 MiB of incompressible bytes: several 1 MiB frames, the last one partial.
PAYLOAD = os.urandom(2_500_000) + b"\0" * 100_000


def sealed(payload: bytes, key: str | None) -> bytes:
    out = io.BytesIO()
    write_object(io.BytesIO(payload), out, key)
    return out.getvalue()


def opened(blob: bytes, key: str | None) -> bytes:
    out = io.BytesIO()
    read_object(io.BytesIO(blob), out, key)
    return out.getvalue()


@pytest.mark.parametrize("key", [None, generate_key()], ids=["plain", "encrypted"])
@pytest.mark.parametrize("payload", [b"", b"x", PAYLOAD], ids=["empty", "one-byte", "frames"])
def test_objects_round_trip(key: str | None, payload: bytes) -> None:
    blob = sealed(payload, key)
    assert opened(blob, key) == payload
    if key is not None and len(payload) >= 16:
        # the bytes are not stored in the clear (a shorter payload can occur in random
        # ciphertext by chance: one byte does in about one run of six)
        assert payload[:64] not in blob


def test_zeros_are_compressed() -> None:
    assert len(sealed(b"\0" * 16 * 1024 * 1024, None)) < 100_000  # an idle WAL segment


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda b: b[:-20], "authentication"),  # the last frame cut short
        (lambda b: b[: 4 + 4 + 12 + (1 << 20) + 16], "authentication"),  # whole frames dropped
        (lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "authentication"),  # one bit
        (lambda b: b"XXXX" + b[4:], "unknown header"),
    ],
    ids=["truncated", "frames-dropped", "bit-flip", "header"],
)
def test_damaged_or_truncated_encrypted_objects_are_refused(damage, message: str) -> None:
    key = generate_key()
    with pytest.raises(ArchiveError, match=message):
        opened(damage(sealed(PAYLOAD, key)), key)


def test_wrong_or_missing_key_is_refused() -> None:
    blob = sealed(PAYLOAD, generate_key())
    with pytest.raises(ArchiveError, match="authentication"):
        opened(blob, generate_key())
    with pytest.raises(ArchiveError, match="set the backup encryption key"):
        opened(blob, None)
    with pytest.raises(ArchiveError, match="32 bytes"):
        opened(blob, "c2hvcnQ=")


def test_truncated_plain_object_is_refused() -> None:
    blob = sealed(PAYLOAD, None)
    with pytest.raises(ArchiveError, match="truncated"):
        opened(blob[: len(blob) // 2], None)


def test_push_is_idempotent_and_never_overwrites(tmp_path: Path) -> None:
    config = ArchiveConfig(str(tmp_path / "archive"), generate_key())
    segment = tmp_path / "000000010000000000000003"
    segment.write_bytes(PAYLOAD)
    push(config, segment, segment.name)
    push(config, segment, segment.name)  # PostgreSQL retries after a crash: fine
    segment.write_bytes(b"other content")
    with pytest.raises(ArchiveError, match="different content"):
        push(config, segment, segment.name)
    out = tmp_path / "restored"
    assert fetch(config, segment.name, out)
    assert out.read_bytes() == PAYLOAD
    assert not fetch(config, "00000002.history", tmp_path / "h")


def test_directory_target_refuses_names_outside_it(tmp_path: Path) -> None:
    target = DirectoryTarget(tmp_path / "archive")
    with pytest.raises(ArchiveError, match="escapes"):
        target.put("../outside", io.BytesIO(b"x"))
    assert not (tmp_path / "outside").exists()


def test_the_commands_postgres_runs(tmp_path: Path) -> None:
    """archive_command and restore_command as a shell runs them, with their exit codes."""
    config_path = tmp_path / "archive.json"
    write_config(config_path, ArchiveConfig(str(tmp_path / "archive"), generate_key()), None)
    assert config_path.stat().st_mode & 0o777 == 0o600  # it holds the key
    segment = tmp_path / "000000010000000000000007"
    segment.write_bytes(PAYLOAD[:1000])

    def run(action: str, p: Path, f: str) -> int:
        shell = command(action, config_path).replace("%p", str(p)).replace("%f", f)
        return subprocess.run(shell, shell=True, capture_output=True, check=False).returncode

    assert run("push", segment, segment.name) == 0
    restored = tmp_path / "RECOVERYXLOG"
    assert run("fetch", restored, segment.name) == 0
    assert restored.read_bytes() == PAYLOAD[:1000]
    assert run("fetch", restored, "000000010000000000000008") == 1  # not archived (yet)
    assert sys.executable in command("push", config_path)
