"""The stack a benchmark measures: a running Vigil (``--url``) or a throwaway local one."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def vigil_url(url: str | None, *, shards: int = 2, replicas: int = 2) -> Iterator[str]:
    """``url`` itself when given; otherwise a local stack on a throwaway, durable
    (fsync on) PostgreSQL, stopped and removed on exit."""
    if url is not None:
        yield url
        return
    from cluster.settings import Settings
    from cluster.stack import start_stack
    from storage.embedded import EmbeddedPostgres, free_port

    tmp = Path(tempfile.mkdtemp(prefix="vigil-bench-"))
    tmp.chmod(0o755)  # reachable by the unprivileged database user when run as root
    db = EmbeddedPostgres(tmp / "pg", port=free_port())
    stack = None
    try:
        db.start()
        settings = Settings(
            data_dir=tmp, http_port=free_port(), shard_count=shards, api_replicas=replicas
        )
        stack = start_stack(settings, database_url=db.url())
        yield stack.url
    finally:
        if stack is not None:
            stack.stop()
        db.stop()
        shutil.rmtree(tmp, ignore_errors=True)
