"""The S3-compatible archive target against a real S3 HTTP endpoint: moto's server, the
stand-in for a cloud object store that cannot exist here, behind the narrow ArchiveTarget
interface. A WAL segment and a base backup of the test database go in and come back out."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from storage.backup import base_backup, list_backups
from storage.embedded import free_port
from storage.wal_archive import (
    ArchiveConfig,
    ArchiveError,
    fetch,
    generate_key,
    open_target,
    push,
    read_object,
)

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """moto's S3 server on a free port, with throwaway credentials in the environment."""
    port = free_port()
    env = {"AWS_ACCESS_KEY_ID": "vigil-test", "AWS_SECRET_ACCESS_KEY": "vigil-test-secret"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    proc = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(url, timeout=1)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "moto's S3 server did not start"
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture
def target(s3_endpoint: str) -> str:
    bucket = f"vigil-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_endpoint, region_name=REGION).create_bucket(
        Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION}
    )
    return f"s3://{bucket}/prod/archive?endpoint={s3_endpoint}&region={REGION}"


def test_objects_are_stored_listed_read_and_deleted_under_the_prefix(target: str) -> None:
    archive = open_target(target)
    assert archive.description.endswith("/prod/archive/")
    archive.put("wal/000000010000000000000001", io.BytesIO(b"one"))
    archive.put("base/20260101T000000Z/backup.json", io.BytesIO(b"{}"))
    assert archive.list("wal/") == ["wal/000000010000000000000001"]
    assert archive.list("") == ["base/20260101T000000Z/backup.json", "wal/000000010000000000000001"]
    out = io.BytesIO()
    assert archive.get("wal/000000010000000000000001", out) and out.getvalue() == b"one"
    assert archive.get("wal/missing", io.BytesIO()) is False
    archive.delete("wal/000000010000000000000001")
    archive.delete("wal/000000010000000000000001")  # again: no error
    assert archive.list("wal/") == []
    with pytest.raises(ValueError, match="not an archive object name"):
        archive.put("../elsewhere", io.BytesIO(b"x"))


def test_a_wal_segment_is_archived_encrypted_and_restored(target: str, tmp_path: Path) -> None:
    segment = os.urandom(1 << 20) + bytes(15 << 20)  # a 16 MiB segment, mostly zeros
    (tmp_path / "pg_wal").mkdir()
    source = tmp_path / "pg_wal" / "000000010000000000000002"
    source.write_bytes(segment)
    config = ArchiveConfig(target, generate_key())
    push(config, source, source.name)
    push(config, source, source.name)  # PostgreSQL retrying after a crash: still fine
    stored = io.BytesIO()
    assert open_target(target).get(f"wal/{source.name}", stored)
    assert segment[:4096] not in stored.getvalue() and len(stored.getvalue()) < 2 << 20
    restored = tmp_path / "RECOVERYXLOG"
    assert fetch(config, source.name, restored) and restored.read_bytes() == segment
    assert fetch(config, "000000010000000000000003", tmp_path / "next") is False
    with pytest.raises(ArchiveError, match="different content"):
        source.write_bytes(b"not the same")
        push(config, source, source.name)


def test_a_base_backup_goes_to_s3_and_comes_back(
    target: str, database_url: str, tmp_path: Path
) -> None:
    key = generate_key()
    info = base_backup(database_url, target, key)
    assert [b.label for b in list_backups(target)] == [info.label] and info.encrypted
    archive = open_target(target)
    sealed, plain = io.BytesIO(), io.BytesIO()
    assert archive.get(f"base/{info.label}/base.tar", sealed)
    sealed.seek(0)
    read_object(sealed, plain, key)
    plain.seek(0)
    with tarfile.open(fileobj=plain) as tar:
        names = tar.getnames()
        version = tar.extractfile("PG_VERSION")
        assert version is not None and version.read().strip().isdigit()
    assert "global/pg_control" in names and "backup_label" in names


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("s3:///no-bucket", "not an s3://bucket/prefix target"),
        ("s3://bucket/p?acl=public", "unknown option"),
        ("ftp://host/dir", "a directory"),
    ],
)
def test_a_wrong_target_is_refused_clearly(spec: str, message: str) -> None:
    with pytest.raises(ArchiveError, match=message):
        open_target(spec)
