"""The readiness probe's database check, on a real PostgreSQL: answering, then not."""

from __future__ import annotations

from storage.pools import answers, open_pool


async def test_answers_while_the_pool_can_query_and_not_once_it_is_closed(
    database_url: str,
) -> None:
    pool = await open_pool(database_url, max_size=1)
    try:
        assert await answers(pool, timeout_s=5) is True
    finally:
        await pool.close()
    assert await answers(pool, timeout_s=5) is False
