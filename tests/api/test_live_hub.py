"""The live hub re-checks a follower's access when a share changes; when that check cannot
run (the database is gone), the follower's streams of the profile end instead of going on
with the access they had (real PostgreSQL; the hub's own NOTIFY handler)."""

from __future__ import annotations

import asyncio
import logging
import uuid

import pytest

from api.routes.stream import LiveHub, Subscriber
from storage import live
from storage.pools import open_pool


async def test_a_share_change_that_cannot_be_checked_ends_the_followers_stream(
    database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    pool = await open_pool(database_url, max_size=1)
    hub = LiveHub(database_url, pool)
    profile, follower, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    watching, bystander = Subscriber(user_id=follower), Subscriber(user_id=other)
    hub.subscribe(watching, profile, (True, True))
    hub.subscribe(bystander, profile, (True, True))
    await pool.close()  # the access check will fail
    payload = live.encode(live.ShareChanged(profile, follower))
    with caplog.at_level(logging.WARNING, logger="api.routes.stream"):
        hub._on_notify(None, 0, live.CHANNEL, payload)
        for _ in range(100):
            if watching.closed is not None:
                break
            await asyncio.sleep(0.02)
    assert watching.closed == "could not re-check your access; reconnect"
    assert watching.queue.get_nowait() is None  # the stream's writer sees the end
    assert bystander.closed is None
    assert "could not re-check stream access" in caplog.text
