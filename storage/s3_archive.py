"""An S3-compatible object store as a backup archive target (AWS S3, MinIO, Ceph RGW, R2...).

``VIGIL_BACKUP_TARGET=s3://bucket/prefix`` archives base backups and WAL segments as objects
under ``prefix``; ``?endpoint=https://minio.internal:9000&region=eu-west-1`` points at a
store other than AWS. Credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` /
``AWS_SECRET_ACCESS_KEY`` in the environment Vigil and the database server are started
with, ``~/.aws``, an instance or pod role), never from the target string, which is written
into the archive config and shown in logs. Objects are compressed and, with a key,
encrypted before they leave (:mod:`storage.wal_archive`), so the store sees only ciphertext.

boto3 is an optional dependency (``pip install vigil[s3]``); it is imported when an s3://
target is opened. An S3 PUT is atomic: a reader never sees half an object.
"""

from __future__ import annotations

import urllib.parse
from typing import Any, BinaryIO

_FRAME = 1 << 20


class S3Target:
    """Objects under ``prefix`` in ``bucket``; names are the archive's slash-separated names."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
    ) -> None:
        try:
            import boto3  # optional: only s3:// targets need it
            from botocore.config import Config
        except ImportError as exc:  # pragma: no cover - the test environment has it
            raise RuntimeError(
                "an s3:// backup target needs boto3: pip install 'vigil[s3]'"
                " (python3-boto3 for the database server's system Python)"
            ) from exc
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.description = f"s3://{bucket}/{self.prefix}"
        retries = Config(retries={"max_attempts": 5, "mode": "standard"})
        self._s3: Any = boto3.client(
            "s3", endpoint_url=endpoint_url, region_name=region, config=retries
        )

    def _key(self, name: str) -> str:
        parts = name.split("/")
        if name.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"not an archive object name: {name!r}")
        return self.prefix + name

    def put(self, name: str, src: BinaryIO) -> None:
        self._s3.upload_fileobj(src, self.bucket, self._key(name))

    def get(self, name: str, dst: BinaryIO) -> bool:
        try:
            body = self._s3.get_object(Bucket=self.bucket, Key=self._key(name))["Body"]
        except self._s3.exceptions.NoSuchKey:
            return False
        while block := body.read(_FRAME):
            dst.write(block)
        return True

    def list(self, prefix: str) -> list[str]:
        pages = self._s3.get_paginator("list_objects_v2").paginate(
            Bucket=self.bucket, Prefix=self.prefix + prefix
        )
        keys = (o["Key"] for page in pages for o in page.get("Contents", []))
        return sorted(k.removeprefix(self.prefix) for k in keys)

    def delete(self, name: str) -> None:
        self._s3.delete_object(Bucket=self.bucket, Key=self._key(name))


def parse(spec: str) -> S3Target:
    """``s3://bucket[/prefix][?endpoint=URL&region=NAME]`` as a target."""
    url = urllib.parse.urlsplit(spec)
    if url.scheme != "s3" or not url.netloc:
        raise ValueError(f"not an s3://bucket/prefix target: {spec!r}")
    query = urllib.parse.parse_qs(url.query)
    unknown = set(query) - {"endpoint", "region"}
    if unknown:
        raise ValueError(f"s3 target {spec!r}: unknown option(s) {', '.join(sorted(unknown))}")
    return S3Target(
        url.netloc,
        url.path,
        endpoint_url=query.get("endpoint", [None])[-1],
        region=query.get("region", [None])[-1],
    )
