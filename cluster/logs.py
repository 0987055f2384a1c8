"""The stack's logs as one stream of JSON lines: what ``vigil logs [--follow]`` prints.

Every Vigil process writes JSON lines (Ray workers through ``ray.LoggingConfig``, Serve
replicas through their logging config, the ``vigil up`` driver into ``<data dir>/logs``),
each with ``timestamp_ns``. This reads them from Ray's session log directory and Vigil's
own, merges them by time and tags each line with the file it came from. Lines that are not
JSON (Ray's own C++ components) are left out: they are in the same directory.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

SUFFIXES = (".log", ".err", ".out")
DEFAULT_RAY_SESSION = Path("/tmp/ray/session_latest")


def log_files(dirs: Iterable[Path]) -> list[Path]:
    """Every log file under ``dirs`` (recursively), in a stable order."""
    found: set[Path] = set()
    for d in dirs:
        if d.is_dir():
            found.update(p for p in d.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    return sorted(found)


def parse(line: str, source: str) -> dict[str, Any] | None:
    """A JSON log line as a dict with ``source`` added; ``None`` for anything else."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    if not isinstance(record, dict):
        return None
    record.setdefault("timestamp_ns", 0)
    record["source"] = source
    return record


class LogReader:
    """Reads what was appended to each file since the last call (for ``--follow``)."""

    def __init__(self, dirs: list[Path]) -> None:
        self.dirs = dirs
        self._offsets: dict[Path, int] = {}

    def new_records(self) -> list[dict[str, Any]]:
        records = []
        for path in log_files(self.dirs):
            offset = self._offsets.get(path, 0)
            try:
                with path.open("rb") as f:
                    f.seek(offset)
                    data = f.read()
            except OSError:
                continue
            complete = data.rfind(b"\n") + 1  # a half-written last line waits
            self._offsets[path] = offset + complete
            source = _source(path, self.dirs)
            for raw in data[:complete].decode("utf-8", "replace").splitlines():
                record = parse(raw, source)
                if record is not None:
                    records.append(record)
        records.sort(key=lambda r: r["timestamp_ns"])
        return records


def _source(path: Path, dirs: list[Path]) -> str:
    for d in dirs:
        if path.is_relative_to(d):
            return str(path.relative_to(d))
    return path.name


def follow(reader: LogReader, poll_s: float = 0.5) -> Iterator[dict[str, Any]]:
    """Every record now, then new ones as they are written (until interrupted)."""
    while True:
        yield from reader.new_records()
        time.sleep(poll_s)


def session_file(run_dir: Path) -> Path:
    """Where the stack notes its Ray session directory (for ``vigil logs``)."""
    return run_dir / "ray-session"


def record_session(run_dir: Path) -> Path | None:
    """Note the connected Ray session's directory; returns it (``None`` outside Ray)."""
    import ray._private.worker as worker  # the session dir has no public accessor

    node = worker._global_node
    if node is None:
        return None
    session = Path(node.get_session_dir_path())
    run_dir.mkdir(parents=True, exist_ok=True)
    session_file(run_dir).write_text(str(session))
    return session


def stack_log_dirs(run_dir: Path, vigil_log_dir: Path) -> list[Path]:
    """Ray's session log directory (as recorded by the stack, else Ray's latest) and
    Vigil's own."""
    noted = session_file(run_dir)
    session = Path(noted.read_text().strip()) if noted.exists() else DEFAULT_RAY_SESSION
    return [session.resolve() / "logs", vigil_log_dir]


VIGIL_LOGGERS = ("actors", "algorithms", "api", "cluster", "sensor_ingest", "storage")


def attach_file_log(log_dir: Path, name: str = "vigil.log") -> logging.Handler:
    """Also write this process's Vigil log records (its own packages' loggers, not every
    library's) to ``log_dir/name``, formatted like its console (JSON once Ray's logging
    config is applied). Returns the handler, for ``detach_file_log``."""
    log_dir.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(log_dir / name, encoding="utf-8")
    root = logging.getLogger()
    formatter = next((h.formatter for h in root.handlers if h.formatter is not None), None)
    if formatter is not None:
        handler.setFormatter(formatter)
    handler.setLevel(logging.INFO)
    for name_ in VIGIL_LOGGERS:
        logging.getLogger(name_).addHandler(handler)
    return handler


def detach_file_log(handler: logging.Handler) -> None:
    for name in VIGIL_LOGGERS:
        logging.getLogger(name).removeHandler(handler)
    handler.close()


HTTP_CLIENT_LOGGERS = ("httpx", "httpcore")


def quiet_http_clients() -> None:
    """Keep the HTTP client libraries at WARNING in this process: httpx logs every request
    at INFO, which in a simulator or gateway is one line per upload and buries Vigil's own
    start-up lines. Vigil's loggers are left as they are."""
    for name in HTTP_CLIENT_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
