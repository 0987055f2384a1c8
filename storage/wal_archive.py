"""The backup archive: where base backups and WAL segments go, compressed and optionally encrypted.

PostgreSQL hands every finished WAL segment to ``archive_command`` and asks for them back
through ``restore_command`` during recovery. Both run this module as a small program::

    python -m storage.wal_archive push <config.json> %p %f
    python -m storage.wal_archive fetch <config.json> %f %p

so the server (which runs as an unprivileged user) needs no Vigil process to be up. The
config file names the target and the encryption key; it is written by :func:`write_config`
with mode 0600, owned by the server's user.

Every stored object is zlib-compressed; with a key it is also sealed with AES-256-GCM in
1 MiB frames. Each frame's associated data is its index and a last-frame flag, so frames
cannot be reordered, dropped or truncated without the restore failing loudly.

Targets sit behind :class:`ArchiveTarget` (put / get / list / delete by name): a directory,
or an S3-compatible object store (:mod:`storage.s3_archive`). This module imports only the
standard library and ``cryptography`` (and boto3 for an s3:// target).
"""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import secrets
import shutil
import struct
import sys
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "ArchiveConfig",
    "ArchiveError",
    "ArchiveTarget",
    "DirectoryTarget",
    "check",
    "command",
    "fetch",
    "generate_key",
    "open_target",
    "push",
    "read_object",
    "write_config",
    "write_object",
]

_FRAME = 1 << 20
_PLAIN = b"VGZ1"  # zlib
_SEALED = b"VGE1"  # zlib, then AES-256-GCM frames
_NONCE = 12


class ArchiveError(RuntimeError):
    """An object could not be stored, found or opened (wrong key, damaged, missing)."""


class ArchiveTarget(Protocol):
    """Where archived objects live, addressed by slash-separated names."""

    description: str

    def put(self, name: str, src: BinaryIO) -> None:
        """Store ``src`` under ``name`` atomically (readers never see half an object)."""

    def get(self, name: str, dst: BinaryIO) -> bool:
        """Copy the object into ``dst``; False if there is none."""

    def list(self, prefix: str) -> list[str]:
        """Names starting with ``prefix``, sorted."""

    def delete(self, name: str) -> None:
        """Remove the object (no error if missing)."""


class DirectoryTarget:
    """A directory on a local or network filesystem (NFS, a mounted volume)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.description = str(self.root)

    def _path(self, name: str) -> Path:
        path = (self.root / name).resolve()
        if self.root.resolve() not in path.parents:
            raise ArchiveError(f"object name escapes the archive: {name!r}")
        return path

    def put(self, name: str, src: BinaryIO) -> None:
        path = self._path(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as out:
                shutil.copyfileobj(src, out, _FRAME)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)

    def get(self, name: str, dst: BinaryIO) -> bool:
        try:
            with self._path(name).open("rb") as src:
                shutil.copyfileobj(src, dst, _FRAME)
        except FileNotFoundError:
            return False
        return True

    def list(self, prefix: str) -> list[str]:
        if not self.root.is_dir():
            return []
        names = (
            p.relative_to(self.root).as_posix()
            for p in self.root.rglob("*")
            if p.is_file() and not p.name.startswith(".partial-")
        )
        return sorted(n for n in names if n.startswith(prefix))

    def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_target(spec: str) -> ArchiveTarget:
    """The target a setting names: a directory path or ``file://`` URL, or ``s3://``."""
    if spec.startswith("file://"):
        return DirectoryTarget(Path(spec.removeprefix("file://")))
    if spec.startswith("s3://"):
        from storage import s3_archive  # boto3 only for s3:// targets

        try:
            return s3_archive.parse(spec)
        except (ValueError, RuntimeError) as exc:
            raise ArchiveError(str(exc)) from exc
    if "://" in spec:
        raise ArchiveError(
            f"backup target {spec!r}: a directory (a path or file:// URL) or an S3-compatible"
            " store (s3://bucket/prefix[?endpoint=URL&region=NAME])"
        )
    return DirectoryTarget(Path(spec))


# -- keys and object format -------------------------------------------------------------------


def generate_key() -> str:
    """A new random encryption key, as the setting takes it (url-safe base64 of 32 bytes)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _decode_key(key: str) -> bytes:
    try:
        raw = base64.urlsafe_b64decode(key.encode())
    except ValueError as exc:
        raise ArchiveError("the backup encryption key is not url-safe base64") from exc
    if len(raw) != 32:
        raise ArchiveError("the backup encryption key must be 32 bytes (url-safe base64)")
    return raw


def _chunks(src: BinaryIO) -> Iterator[bytes]:
    """``src`` compressed, in pieces."""
    packer = zlib.compressobj(6)
    while block := src.read(_FRAME):
        if piece := packer.compress(block):
            yield piece
    yield packer.flush()


def _frames(src: BinaryIO) -> Iterator[tuple[bytes, bool]]:
    """Compressed ``src`` cut into frames of at most 1 MiB, each with a last-frame flag."""
    pending = b""
    for piece in _chunks(src):
        pending += piece
        while len(pending) > _FRAME:
            yield pending[:_FRAME], False
            pending = pending[_FRAME:]
    yield pending, True


def _aad(index: int, last: bool) -> bytes:
    return struct.pack(">QB", index, last)


def write_object(src: BinaryIO, dst: BinaryIO, key: str | None) -> None:
    """Write ``src`` compressed, and sealed when a key is given, to ``dst``."""
    if key is None:
        dst.write(_PLAIN)
        for piece in _chunks(src):
            dst.write(piece)
        return
    aead = AESGCM(_decode_key(key))
    dst.write(_SEALED)
    for index, (frame, last) in enumerate(_frames(src)):
        nonce = secrets.token_bytes(_NONCE)
        sealed = aead.encrypt(nonce, frame, _aad(index, last))
        dst.write(struct.pack(">I", len(sealed)) + nonce + sealed)


def read_object(src: BinaryIO, dst: BinaryIO, key: str | None) -> None:
    """Reverse :func:`write_object`; raises :class:`ArchiveError` on any damage or wrong key."""
    magic = src.read(4)
    unpacker = zlib.decompressobj()
    try:
        if magic == _PLAIN:
            while block := src.read(_FRAME):
                dst.write(unpacker.decompress(block))
        elif magic == _SEALED:
            if key is None:
                raise ArchiveError("the archive is encrypted: set the backup encryption key")
            for frame in _open_frames(src, AESGCM(_decode_key(key))):
                dst.write(unpacker.decompress(frame))
        else:
            raise ArchiveError("not a Vigil archive object (unknown header)")
        dst.write(unpacker.flush())
    except zlib.error as exc:
        raise ArchiveError(f"archive object damaged: {exc}") from exc
    if not unpacker.eof:
        raise ArchiveError("archive object truncated")


def _open_frames(src: BinaryIO, aead: AESGCM) -> Iterator[bytes]:
    index = 0
    while header := src.read(4):
        (length,) = struct.unpack(">I", header)
        nonce = src.read(_NONCE)
        sealed = src.read(length)
        last = _at_end(src)
        try:
            yield aead.decrypt(nonce, sealed, _aad(index, last))
        except InvalidTag as exc:
            raise ArchiveError("archive object fails authentication (wrong key, damaged)") from exc
        index += 1
    if index == 0:
        raise ArchiveError("archive object truncated")


def _at_end(src: BinaryIO) -> bool:
    here = src.tell()
    at_end = not src.read(1)
    src.seek(here)
    return at_end


# -- the archive_command / restore_command program --------------------------------------------


@dataclass(frozen=True)
class ArchiveConfig:
    """What ``archive_command`` and ``restore_command`` read: the target and the key."""

    target: str
    key: str | None = None

    @classmethod
    def load(cls, path: Path) -> ArchiveConfig:
        data = json.loads(Path(path).read_text())
        return cls(target=data["target"], key=data.get("key"))


def write_config(path: Path, config: ArchiveConfig, owner: tuple[int, int] | None) -> None:
    """Write the config file mode 0600 (it holds the key), owned by ``owner`` (uid, gid)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)
        json.dump({"target": config.target, "key": config.key}, out)
    if owner is not None:
        os.chown(path, *owner)


def wal_name(file_name: str) -> str:
    return f"wal/{file_name}"


def push(config: ArchiveConfig, path: Path, file_name: str) -> None:
    """Archive one WAL file. Pushing the same content again succeeds (PostgreSQL retries after
    a crash); different content under an existing name is refused, never overwritten."""
    target = open_target(config.target)
    name = wal_name(file_name)
    existing = _read_plain(target, name, config.key)
    if existing is not None:
        if existing != Path(path).read_bytes():
            raise ArchiveError(f"{name} is already archived with different content")
        return
    with tempfile.TemporaryFile() as sealed, Path(path).open("rb") as src:
        write_object(src, sealed, config.key)
        sealed.seek(0)
        target.put(name, sealed)


def fetch(config: ArchiveConfig, file_name: str, path: Path) -> bool:
    """Restore one archived WAL or history file to ``path``; False if it is not archived."""
    target = open_target(config.target)
    with tempfile.TemporaryFile() as sealed:
        if not target.get(wal_name(file_name), sealed):
            return False
        sealed.seek(0)
        tmp = Path(path).with_name(Path(path).name + ".fetching")
        with tmp.open("wb") as out:
            read_object(sealed, out, config.key)
        tmp.replace(path)
    return True


def _read_plain(target: ArchiveTarget, name: str, key: str | None) -> bytes | None:
    with tempfile.TemporaryFile() as sealed:
        if not target.get(name, sealed):
            return None
        sealed.seek(0)
        with tempfile.TemporaryFile() as plain:
            read_object(sealed, plain, key)
            plain.seek(0)
            return plain.read()


def interpreter(as_other_user: bool) -> str:
    """The Python that runs the commands. The server's own unprivileged user (when Vigil runs
    as root) often cannot reach Vigil's interpreter (e.g. under /root), so it gets the
    system's ``/usr/bin/python3``, which needs ``cryptography`` (Debian: python3-cryptography).
    """
    system = Path("/usr/bin/python3")
    return str(system) if as_other_user and system.exists() else sys.executable


def command(action: str, config_path: Path, *, as_other_user: bool = False) -> str:
    """The shell command PostgreSQL runs for ``push`` (archive) or ``fetch`` (restore), or
    ``check`` (store and remove a probe object: the target is reachable and writable)."""
    root = Path(__file__).resolve().parent.parent
    args = {"push": "%p %f", "fetch": "%f %p", "check": "- -"}[action]
    return (
        f"env PYTHONPATH={_sh(str(root))} PYTHONDONTWRITEBYTECODE=1 "
        f"{_sh(interpreter(as_other_user))} -m storage.wal_archive {action} "
        f"{_sh(str(config_path))} {args}"
    )


def check(config: ArchiveConfig) -> None:
    """Store, read back and remove a probe object (with the key, if any)."""
    target = open_target(config.target)
    name = f"wal/.probe-{secrets.token_hex(8)}"
    with tempfile.TemporaryFile() as sealed:
        write_object(io.BytesIO(b"probe"), sealed, config.key)
        sealed.seek(0)
        target.put(name, sealed)
    try:
        if _read_plain(target, name, config.key) != b"probe":
            raise ArchiveError("the probe object did not read back intact")
    finally:
        target.delete(name)


def _sh(value: str) -> str:
    return "'" + value.replace("'", "'\"'\"'") + "'"


def main(argv: list[str]) -> int:
    """Exit 0 on success; 1 when a fetched file is not archived (normal during recovery)."""
    if len(argv) != 4 or argv[0] not in ("push", "fetch", "check"):
        usage = "usage: python -m storage.wal_archive push|fetch|check CONFIG ARG ARG"
        print(usage, file=sys.stderr)
        return 2
    action, config_path, first, second = argv
    config = ArchiveConfig.load(Path(config_path))
    try:
        if action == "check":
            check(config)
            return 0
        if action == "push":
            push(config, Path(first), second)
            return 0
        return 0 if fetch(config, first, Path(second)) else 1
    except (ArchiveError, OSError) as exc:
        print(f"vigil wal_archive {action}: {exc}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main(sys.argv[1:]))
