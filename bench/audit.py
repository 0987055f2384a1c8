"""Cost of the abuse-resistance and audit bookkeeping, straight against PostgreSQL: one
audit-log INSERT (done after each audited GET's response), the lockout check done before
every password login, and the bookkeeping of a failed login.

Starts a throwaway embedded PostgreSQL unless ``--database-url`` is given; prints p50/p99
in ms over ``--count`` sequential calls, and the audit log's size per row.

    .venv/bin/python -m bench.audit [--count 2000]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid

from api import login_guard
from api.config import ApiConfig
from storage import audit
from storage.migrate import migrate
from storage.pools import open_pool


async def _timed(call, n: int) -> tuple[float, float]:
    samples = []
    for i in range(n):
        began = time.perf_counter()
        await call(i)
        samples.append((time.perf_counter() - began) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(0.99 * (len(samples) - 1))]


async def run(url: str, n: int) -> dict[str, float | tuple[float, float]]:
    pool = await open_pool(url, max_size=2)
    config = ApiConfig(database_url=url, login_max_failures_per_account=n + 1)
    config = config.model_copy(update={"login_max_failures_per_address": n + 1})
    actor, profile, device = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    try:
        before = await pool.fetchval("SELECT pg_total_relation_size('audit_log')")
        result: dict[str, float | tuple[float, float]] = {
            "audit_insert": await _timed(
                lambda i: audit.record(
                    pool,
                    "user",
                    actor,
                    profile,
                    device,
                    "GET /v1/devices/{device_id}/readings",
                    "203.0.113.7",
                    "Vigil-iOS/1.4",
                ),
                n,
            ),
            "login_lock_check": await _timed(
                lambda i: login_guard.check(pool, "bench@example.com", "203.0.113.7"), n
            ),
            "login_failure_record": await _timed(
                lambda i: login_guard.failed(pool, config, "bench@example.com", "203.0.113.8"), n
            ),
        }
        after = await pool.fetchval("SELECT pg_total_relation_size('audit_log')")
        result["audit_bytes_per_row"] = (after - before) / n
        return result
    finally:
        await pool.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--database-url", help="a migrated database; default: start one")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args()
    with contextlib.ExitStack() as cleanup:
        url = args.database_url
        if url is None:
            from storage.embedded import throwaway_postgres

            url = cleanup.enter_context(throwaway_postgres("vigil-bench-")).url()
            migrate(url)
        result = asyncio.run(run(url, args.count))
    print(f"count={args.count} sequential calls, one connection")
    for name, value in result.items():
        if isinstance(value, tuple):
            print(f"{name}_p50_ms: {value[0]:.3f}")
            print(f"{name}_p99_ms: {value[1]:.3f}")
        else:
            print(f"{name}: {value:.0f}")


if __name__ == "__main__":
    main()
