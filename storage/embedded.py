"""The embedded local PostgreSQL that Vigil starts when no database URL is configured.

Used by ``vigil up``, ``make demo`` and the test suite. It runs the machine's own PostgreSQL
server binaries on a cluster kept under a per-user data directory::

    data_dir/
        pgdata/         the cluster (initdb); Vigil's settings live in pgdata/vigil.conf
        run/            private (0700) directory holding the unix socket
        password        generated password of the database user (0600)
        postgres.log    server log

The server listens on a loopback address only. TCP clients authenticate with
scram-sha-256; the unix socket (in the private ``run/`` directory) trusts local processes
that can reach it, i.e. the owner of the data directory and root.

PostgreSQL refuses to run as root, so when Vigil runs as root the server binaries run as the
unprivileged system user ``vigil-db`` (created on first use), which owns ``data_dir``.

This module imports only the standard library and psycopg (storage is a leaf package).
"""

from __future__ import annotations

import contextlib
import ipaddress
import math
import os
import pwd
import random
import re
import secrets
import shutil
import socket
import stat
import subprocess
import tempfile
import types
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

__all__ = [
    "DB_SYSTEM_USER",
    "DEFAULT_PORT",
    "EmbeddedPostgres",
    "EmbeddedPostgresError",
    "PostgresStatus",
    "default_data_dir",
    "find_pg_bindir",
    "free_port",
    "throwaway_postgres",
]

DEFAULT_PORT = 54329
DB_SYSTEM_USER = "vigil-db"
"""Unprivileged system user that runs the server when Vigil itself runs as root."""

_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
_LOG_TAIL_LINES = 40
_LOG_ROTATE_BYTES = 10 * 1024 * 1024
_UNIX_SOCKET_PATH_MAX = 107
_INSTALL_HINT = (
    "Install the PostgreSQL server, e.g. `apt-get install postgresql` (Debian/Ubuntu), "
    "or set VIGIL_PG_BINDIR to the directory holding initdb, pg_ctl and postgres, "
    "or configure a database URL instead of the embedded server."
)


class EmbeddedPostgresError(RuntimeError):
    """The embedded PostgreSQL could not be found, initialised, started or stopped."""


def default_data_dir() -> Path:
    """Return the per-user data directory of Vigil.

    ``$VIGIL_DATA_DIR`` if set; else ``/var/lib/vigil`` for root; else
    ``$XDG_DATA_HOME/vigil`` or ``~/.local/share/vigil``.
    """
    if explicit := os.environ.get("VIGIL_DATA_DIR"):
        return Path(explicit).expanduser()
    if os.geteuid() == 0:
        return Path("/var/lib/vigil")
    xdg = os.environ.get("XDG_DATA_HOME")
    base = Path(xdg) if xdg else Path.home() / ".local" / "share"
    return base / "vigil"


def _has_server_binaries(bindir: Path) -> bool:
    return all(os.access(bindir / name, os.X_OK) for name in _SERVER_BINARIES)


def _version_key(path: Path) -> tuple[int, ...]:
    """Sort key for ``/usr/lib/postgresql/<version>/bin`` (numeric, highest last)."""
    return tuple(int(part) for part in re.findall(r"\d+", path.parent.name))


def find_pg_bindir() -> Path:
    """Locate the PostgreSQL server binaries (initdb, pg_ctl, postgres).

    Order: ``$VIGIL_PG_BINDIR``, ``pg_config --bindir``, the highest
    ``/usr/lib/postgresql/*/bin``, then ``PATH``.
    """
    if explicit := os.environ.get("VIGIL_PG_BINDIR"):
        bindir = Path(explicit).expanduser()
        if not _has_server_binaries(bindir):
            raise EmbeddedPostgresError(
                f"VIGIL_PG_BINDIR={explicit} does not contain {', '.join(_SERVER_BINARIES)}. "
                + _INSTALL_HINT
            )
        return bindir

    candidates: list[Path] = []
    if pg_config := shutil.which("pg_config"):
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            if out:
                candidates.append(Path(out))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key, reverse=True)
    if pg_ctl := shutil.which("pg_ctl"):
        candidates.append(Path(pg_ctl).resolve().parent)

    for bindir in candidates:
        if _has_server_binaries(bindir):
            return bindir
    raise EmbeddedPostgresError(
        f"PostgreSQL server binaries ({', '.join(_SERVER_BINARIES)}) not found. " + _INSTALL_HINT
    )


# Listening ports are picked below the kernel's ephemeral range (from which every outgoing
# connection, Ray's included, takes its local port: a port picked there can be taken before
# the server binds it) and above Ray's worker ports (10002-19999).
_LISTEN_PORTS = (20_000, 32_768)


def _ephemeral_low() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32_768


def free_port(host: str = "127.0.0.1", avoid: Collection[int] = ()) -> int:
    """A TCP port currently free on ``host`` (127.0.0.1 by default), for a server to listen on,
    not one of ``avoid`` (ports picked but not yet bound)."""
    low, high = _listen_range()
    candidates = random.sample(range(low, high), min(200, max(0, high - low)))
    for port in [*candidates, 0]:  # 0: let the kernel choose, if none of those is free
        if (bound := _bound_port(host, port)) is not None and bound not in avoid:
            return bound
    raise OSError(f"no free TCP port on {host}")


def free_port_block(size: int, avoid: Collection[int] = (), host: str = "127.0.0.1") -> int:
    """The first of ``size`` consecutive TCP ports all free now on ``host``, in the same range
    as :func:`free_port`, none of them in ``avoid`` (ports picked but not yet bound): a range
    of its own for servers that pick their ports in turn."""
    low, high = _listen_range()
    high -= size
    for first in random.sample(range(low, high, size), min(50, max(0, (high - low) // size))):
        block = range(first, first + size)
        if not any(port in block for port in avoid) and all(
            _bound_port(host, port) is not None for port in block
        ):
            return first
    raise OSError(f"no {size} consecutive free TCP ports on {host}")


def _listen_range() -> tuple[int, int]:
    return _LISTEN_PORTS[0], min(_LISTEN_PORTS[1], _ephemeral_low())


def _bound_port(host: str, port: int) -> int | None:
    """The port a socket bound to ``(host, port)`` got (the kernel's choice for 0), or None
    when it is taken; the socket is closed again."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError:
            return None
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class _RunAs:
    """The unprivileged OS account the server binaries run as (root only)."""

    uid: int
    gid: int
    name: str


def _db_system_user() -> _RunAs:
    """Return (creating it if missing) the system user that runs PostgreSQL for root."""
    with contextlib.suppress(KeyError):
        entry = pwd.getpwnam(DB_SYSTEM_USER)
        return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)
    useradd = shutil.which("useradd") or shutil.which("useradd", path="/usr/sbin:/sbin")
    if useradd is None:
        entry = pwd.getpwnam("nobody")
        return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)
    result = subprocess.run(
        [
            useradd,
            "--system",
            "--user-group",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            DB_SYSTEM_USER,
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    try:  # a concurrent process may have created it first: only the end state matters
        entry = pwd.getpwnam(DB_SYSTEM_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"could not create system user {DB_SYSTEM_USER!r} to run PostgreSQL "
            f"(PostgreSQL refuses to run as root): {result.stderr.strip()}"
        ) from None
    return _RunAs(entry.pw_uid, entry.pw_gid, entry.pw_name)


def _process_is_postgres(pid: int) -> bool:
    """Whether ``pid`` is a live (non-zombie) PostgreSQL process."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # alive, owned by another user
    proc = Path("/proc") / str(pid)
    if not proc.is_dir():
        return True  # no procfs: trust the signal probe
    try:
        stat_fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
        comm = (proc / "comm").read_text().strip()
    except OSError:
        return False  # exited meanwhile
    if stat_fields[0] in ("Z", "X"):
        return False
    return comm.startswith(("postgres", "postmaster"))


def _tail(path: Path, lines: int = _LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines of a text file, or a note if it cannot be read."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(cannot read {path}: {exc})"
    return "\n".join(text.splitlines()[-lines:])


def _conf_quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


@dataclass
class PostgresStatus:
    """What :meth:`EmbeddedPostgres.status` reports."""

    running: bool
    pid: int | None
    port: int
    data_dir: Path
    url: str | None


class EmbeddedPostgres:
    """A local PostgreSQL cluster in ``data_dir``, started and stopped by Vigil.

    ``durable=False`` turns off fsync, synchronous_commit and full_page_writes: fast, but a
    machine crash can corrupt the cluster, so only for throwaway (test) servers.
    """

    def __init__(
        self,
        data_dir: Path,
        port: int = DEFAULT_PORT,
        host: str = "127.0.0.1",
        dbname: str = "vigil",
        user: str = "vigil",
        *,
        durable: bool = True,
        bindir: Path | None = None,
        extra_settings: dict[str, str] | None = None,
    ) -> None:
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = False
        if not loopback:
            raise ValueError(f"host must be a loopback IP address, got {host!r}")
        for what, name in (("dbname", dbname), ("user", user)):
            if not _NAME_RE.match(name):
                raise ValueError(f"{what} must match {_NAME_RE.pattern}, got {name!r}")
        self.data_dir = Path(data_dir).expanduser().absolute()
        self.port = port
        self.host = host
        self.dbname = dbname
        self.user = user
        self.durable = durable
        self._bindir = bindir
        self._run_as: _RunAs | None = None
        self.extra_settings = dict(extra_settings or {})
        """More server settings for vigil.conf (WAL archiving, synchronous standby), already
        in configuration-file syntax (strings quoted)."""

    # -- paths -------------------------------------------------------------------------

    @property
    def pgdata(self) -> Path:
        """The cluster directory."""
        return self.data_dir / "pgdata"

    @property
    def log_file(self) -> Path:
        """The server log."""
        return self.data_dir / "postgres.log"

    @property
    def password_file(self) -> Path:
        """The generated password of :attr:`user` (mode 0600)."""
        return self.data_dir / "password"

    @property
    def socket_dir(self) -> Path:
        """Private directory holding the unix socket (usable as libpq ``host``)."""
        return self.data_dir / "run"

    @property
    def bindir(self) -> Path:
        """Directory of the PostgreSQL server binaries."""
        if self._bindir is None:
            self._bindir = find_pg_bindir()
        return self._bindir

    # -- public API ----------------------------------------------------------------------

    def is_initialised(self) -> bool:
        """Whether the cluster exists (initdb done and password generated)."""
        return (self.pgdata / "PG_VERSION").is_file() and self.password_file.is_file()

    def init(self) -> None:
        """Create the cluster, its superuser :attr:`user` and database :attr:`dbname`.

        Idempotent: does nothing if the cluster already exists.
        """
        if self.is_initialised():
            return
        if (self.pgdata / "PG_VERSION").is_file():
            raise EmbeddedPostgresError(
                f"{self.pgdata} holds a cluster but {self.password_file} is missing; "
                "restore the password file or remove the data directory"
            )
        self._prepare_dirs()
        self._write_password(secrets.token_urlsafe(24))
        result = self._run(
            [
                str(self.bindir / "initdb"),
                "--pgdata",
                str(self.pgdata),
                "--username",
                self.user,
                "--pwfile",
                str(self.password_file),
                "--encoding",
                "UTF8",
                "--locale",
                "C",
                "--auth-host",
                "scram-sha-256",
                "--auth-local",
                "trust",  # unix socket lives in the private 0700 run/ directory
            ]
        )
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"initdb failed in {self.pgdata}:\n{result.stderr}")
        with (self.pgdata / "postgresql.conf").open("a") as conf:
            conf.write("\n# Vigil's settings, rewritten at every start\n")
            conf.write("include_if_exists = 'vigil.conf'\n")
        if self.dbname != "postgres":
            self._create_database_single_user()

    def start(self, timeout_s: float = 60) -> None:
        """Start the server (initialising the cluster first if needed); no-op if running."""
        current = self.status()
        if current.running:
            if current.port != self.port:
                raise EmbeddedPostgresError(
                    f"PostgreSQL in {self.pgdata} is already running on port {current.port}, "
                    f"not {self.port}; stop it first"
                )
            return
        self._check_port_free()
        self.init()
        self._prepare_dirs()
        self._remove_stale_pidfile()
        self._write_settings()
        self._rotate_log()
        args = [
            str(self.bindir / "pg_ctl"),
            "start",
            "--wait",
            "--timeout",
            str(max(1, math.ceil(timeout_s))),
            "--silent",
            "--pgdata",
            str(self.pgdata),
            "--log",
            str(self.log_file),
        ]
        try:
            result = self._run(args, timeout=timeout_s + 15)
            error = result.stderr.strip() if result.returncode != 0 else None
        except subprocess.TimeoutExpired:
            error = f"pg_ctl start did not return within {timeout_s + 15:.0f}s"
        if error is None:
            return
        self._stop_after_failed_start()
        raise EmbeddedPostgresError(
            f"PostgreSQL failed to start on {self.host}:{self.port} (data in {self.pgdata}): "
            f"{error}\n--- last lines of {self.log_file}:\n{_tail(self.log_file)}"
        )

    def stop(self, timeout_s: float = 30) -> None:
        """Stop the server (fast shutdown: roll back open transactions); no-op if stopped."""
        if not self.status().running:
            return
        args = [
            str(self.bindir / "pg_ctl"),
            "stop",
            "--wait",
            "--timeout",
            str(max(1, math.ceil(timeout_s))),
            "--silent",
            "--pgdata",
            str(self.pgdata),
            "--mode",
            "fast",
        ]
        result = self._run(args, timeout=timeout_s + 15)
        if result.returncode != 0 and self.status().running:
            raise EmbeddedPostgresError(
                f"PostgreSQL in {self.pgdata} did not stop: {result.stderr.strip()}\n"
                f"--- last lines of {self.log_file}:\n{_tail(self.log_file)}"
            )

    def status(self) -> PostgresStatus:
        """Whether the server runs (a stale ``postmaster.pid`` counts as stopped)."""
        pid, port = self._read_pidfile()
        if pid is None or not _process_is_postgres(pid):
            return PostgresStatus(False, None, self.port, self.data_dir, None)
        url: str | None = None
        with contextlib.suppress(EmbeddedPostgresError):
            url = self._url(port or self.port)
        return PostgresStatus(True, pid, port or self.port, self.data_dir, url)

    def url(self) -> str:
        """``postgresql://user:password@host:port/dbname`` of this server."""
        return self._url(self.port)

    def owner_ids(self) -> tuple[int, int] | None:
        """(uid, gid) the server's files must belong to, or None when that is ourselves."""
        owner = self._owner()
        return (owner.uid, owner.gid) if owner else None

    def run_tool(
        self, name: str, args: list[str], *, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a PostgreSQL program of :attr:`bindir` (pg_basebackup, pg_ctl) as the cluster
        owner, after creating :attr:`data_dir` owned by it; raises if it fails."""
        self.prepare_dirs()
        result = self._run([str(self.bindir / name), *args], timeout=timeout)
        if result.returncode != 0:
            raise EmbeddedPostgresError(f"{name} failed: {result.stderr.strip()}")
        return result

    def prepare_dirs(self) -> None:
        """Create :attr:`data_dir` and its ``run/`` owned by the server's user (idempotent)."""
        self._prepare_dirs()

    def promote(self, timeout_s: float = 60) -> None:
        """Turn this standby into a primary (``pg_ctl promote``); waits until it takes writes."""
        wait = ["--wait", "--timeout", str(max(1, math.ceil(timeout_s)))]
        self.run_tool("pg_ctl", ["promote", *wait, "--pgdata", str(self.pgdata)])

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: types.TracebackType | None,
    ) -> None:
        self.stop()

    # -- internals -----------------------------------------------------------------------

    def _url(self, port: int) -> str:
        try:
            password = self.password_file.read_text().strip()
        except OSError as exc:
            raise EmbeddedPostgresError(
                f"cannot read the database password {self.password_file} "
                f"(cluster not initialised?): {exc}"
            ) from exc
        host = f"[{self.host}]" if ":" in self.host else self.host
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(password, safe='')}"
            f"@{host}:{port}/{quote(self.dbname, safe='')}"
        )

    def _owner(self) -> _RunAs | None:
        """The account the server runs as: ``vigil-db`` when we are root, else ourselves."""
        if os.geteuid() != 0:
            return None
        if self._run_as is None:
            self._run_as = _db_system_user()
        return self._run_as

    def _run(
        self, args: list[str], *, input: str | None = None, timeout: float | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run a server binary as the cluster owner, with a clean PG* environment."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        owner = self._owner()
        return subprocess.run(
            args,
            input=input,
            stdin=None if input is not None else subprocess.DEVNULL,
            capture_output=True,
            text=True,
            env=env,
            cwd=self.data_dir,
            timeout=timeout,
            check=False,
            user=owner.uid if owner else None,
            group=owner.gid if owner else None,
            extra_groups=[] if owner else None,
        )

    def _chown(self, path: Path) -> None:
        owner = self._owner()
        if owner is not None and path.exists():
            os.chown(path, owner.uid, owner.gid)

    def _prepare_dirs(self) -> None:
        """Create data_dir and run/, owned by the cluster owner and reachable by it."""
        if not self.data_dir.exists():
            self.data_dir.mkdir(parents=True)
            self.data_dir.chmod(0o700)
        self.socket_dir.mkdir(mode=0o700, exist_ok=True)
        sock = self.socket_dir / f".s.PGSQL.{self.port}"
        if len(str(sock)) > _UNIX_SOCKET_PATH_MAX:
            raise EmbeddedPostgresError(
                f"data directory path too long for a unix socket ({sock}); "
                "use a shorter data directory (VIGIL_DATA_DIR)"
            )
        owner = self._owner()
        if owner is None:
            return
        self._check_traversable(owner)
        for path in (self.data_dir, self.socket_dir, self.password_file, self.log_file):
            self._chown(path)
        if self.pgdata.exists() and self.pgdata.stat().st_uid != owner.uid:
            for root, dirs, files in os.walk(self.pgdata):
                for name in (root, *(os.path.join(root, n) for n in dirs + files)):
                    os.chown(name, owner.uid, owner.gid, follow_symlinks=False)

    def _check_traversable(self, owner: _RunAs) -> None:
        """Every parent of data_dir must be searchable by the (unprivileged) owner."""
        for parent in reversed(self.data_dir.parents):
            st = parent.stat()
            if st.st_uid == owner.uid:
                bit = stat.S_IXUSR
            elif st.st_gid == owner.gid:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                raise EmbeddedPostgresError(
                    f"PostgreSQL runs as the unprivileged user {owner.name!r} (it refuses to run "
                    f"as root), which cannot reach {self.data_dir}: {parent} is mode "
                    f"{stat.S_IMODE(st.st_mode):o}. Set VIGIL_DATA_DIR to a directory whose "
                    "parents are world-traversable (e.g. /var/lib/vigil), or chmod o+x "
                    f"{parent}"
                )

    def _write_password(self, password: str) -> None:
        fd = os.open(self.password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            os.fchmod(f.fileno(), 0o600)
            f.write(password + "\n")
        self._chown(self.password_file)

    def _create_database_single_user(self) -> None:
        """CREATE DATABASE in single-user mode: no server, no port needed."""
        statement = f"CREATE DATABASE {_ident(self.dbname)} OWNER {_ident(self.user)}\n"
        result = self._run(
            [str(self.bindir / "postgres"), "--single", "-D", str(self.pgdata), "postgres"],
            input=statement,
        )
        # single-user mode exits 0 even when a statement fails: look at the messages
        if result.returncode != 0 or re.search(r"\b(ERROR|FATAL|PANIC):", result.stderr):
            shutil.rmtree(self.pgdata, ignore_errors=True)  # we just created it: start over
            raise EmbeddedPostgresError(
                f"creating database {self.dbname!r} failed:\n{result.stderr.strip()}"
            )

    def _timescaledb_available(self) -> bool:
        """Whether the TimescaleDB library is installed for this server version."""
        return (self.bindir.parent / "lib" / "timescaledb.so").is_file()

    def _write_settings(self) -> None:
        """Write pgdata/vigil.conf: network, resources, durability, logging."""
        on_off = "on" if self.durable else "off"
        lines = [
            "# Written by Vigil at every start; local overrides go in postgresql.auto.conf",
            "# (ALTER SYSTEM), which is read after this file.",
            f"listen_addresses = {_conf_quote(self.host)}",
            f"port = {self.port}",
            f"unix_socket_directories = {_conf_quote(str(self.socket_dir))}",
            "unix_socket_permissions = 0700",
            "max_connections = 200",
            "shared_buffers = 128MB",
            f"fsync = {on_off}",
            f"synchronous_commit = {on_off}",
            f"full_page_writes = {on_off}",
            "logging_collector = off",
            "log_destination = 'stderr'",
            "log_line_prefix = '%m [%p] %q%u@%d '",
        ]
        if self._timescaledb_available():
            lines += [
                "shared_preload_libraries = 'timescaledb'",
                "timescaledb.telemetry_level = off",
            ]
        lines += [f"{name} = {value}" for name, value in self.extra_settings.items()]
        conf = self.pgdata / "vigil.conf"
        conf.write_text("\n".join(lines) + "\n")
        self._chown(conf)

    def _rotate_log(self) -> None:
        """Keep one previous log when the current one grows large; create it owned right."""
        with contextlib.suppress(FileNotFoundError):
            if self.log_file.stat().st_size > _LOG_ROTATE_BYTES:
                self.log_file.replace(self.log_file.with_suffix(".log.1"))
        fd = os.open(self.log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        os.close(fd)
        self._chown(self.log_file)

    def _read_pidfile(self) -> tuple[int | None, int | None]:
        """(pid, port) from pgdata/postmaster.pid, or (None, None)."""
        try:
            lines = (self.pgdata / "postmaster.pid").read_text().splitlines()
        except (OSError, UnicodeDecodeError):
            return None, None
        try:
            pid = int(lines[0])
        except (IndexError, ValueError):
            return None, None
        try:
            port: int | None = int(lines[3])
        except (IndexError, ValueError):
            port = None
        return pid, port

    def _remove_stale_pidfile(self) -> None:
        pidfile = self.pgdata / "postmaster.pid"
        pid, _ = self._read_pidfile()
        if pid is not None and not _process_is_postgres(pid):
            pidfile.unlink(missing_ok=True)

    def _check_port_free(self) -> None:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            # like PostgreSQL itself, so connections in TIME_WAIT do not count as "taken"
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((self.host, self.port))
            except OSError as exc:
                raise EmbeddedPostgresError(
                    f"cannot start the embedded PostgreSQL: port {self.port} on {self.host} "
                    f"is already in use by another process ({exc.strerror}); "
                    "stop that process or choose another port"
                ) from exc

    def _stop_after_failed_start(self) -> None:
        """Do not leave a half-started server behind."""
        pid, _ = self._read_pidfile()
        if pid is None or not _process_is_postgres(pid):
            return
        with contextlib.suppress(subprocess.SubprocessError, OSError):
            self._run(
                [
                    str(self.bindir / "pg_ctl"),
                    "stop",
                    "--wait",
                    "--silent",
                    "--pgdata",
                    str(self.pgdata),
                    "--mode",
                    "immediate",
                ],
                timeout=30,
            )


@contextlib.contextmanager
def throwaway_postgres(
    prefix: str = "vigil-", *, durable: bool = True
) -> Iterator[EmbeddedPostgres]:
    """A started server on a free port in a new temporary directory (its ``data_dir`` is
    ``<tmp>/pg``), stopped and removed on exit: for tests and benchmarks."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix))
    tmp.chmod(0o755)  # mkdtemp gives 0700: the unprivileged server user must reach it as root
    server = EmbeddedPostgres(tmp / "pg", port=free_port(), durable=durable)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
