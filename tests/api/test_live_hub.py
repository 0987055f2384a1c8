"""The live hub re-checks a follower's access when a share changes; when that check cannot
run (the database is gone), the follower's streams of the profile end instead of going on
with the access they had (real PostgreSQL; the hub's own NOTIFY handler)."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from datetime import UTC, datetime

import pytest

from api.routes.stream import LiveHub, StreamReading, Subscriber, reading_message
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


async def test_device_updates_reach_the_streams_that_follow_their_profile_only(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every replica receives every committed batch's update; one for a profile none of its
    streams follows is passed over without being decoded."""
    pool = await open_pool(database_url, max_size=1)
    hub = LiveHub(database_url, pool)
    followed, elsewhere, device = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    sub = Subscriber(user_id=uuid.uuid4())
    hub.subscribe(sub, followed, (True, False))
    decoded: list[str] = []
    real_decode = live.decode
    monkeypatch.setattr(live, "decode", lambda p, *a: decoded.append(p) or real_decode(p, *a))
    reading = live.LiveReading(1.7e9, 120.0, -1.5, "FortyFiveDown", 95.0)
    for profile in (elsewhere, followed, elsewhere):
        payload = live.encode(live.DeviceUpdate(profile, device, "glucose", reading))
        hub._on_notify(None, 0, live.CHANNEL, payload)
    assert hub.received == 3 and len(decoded) == 1 and str(followed) in decoded[0]
    assert '"value":120.0' in sub.queue.get_nowait().replace(" ", "")
    assert sub.queue.empty()
    others = live.encode(live.ShareChanged(elsewhere, uuid.uuid4()))
    hub._on_notify(None, 0, live.CHANNEL, others)  # not a device update: always decoded
    assert decoded[-1] == others
    await pool.close()


async def test_one_payload_of_many_updates_reaches_each_stream(database_url: str) -> None:
    """A payload may carry many devices' updates, one per line (``live.messages``):
    each reaches the streams that follow its profile, in order, and is counted."""
    pool = await open_pool(database_url, max_size=1)
    hub = LiveHub(database_url, pool)
    followed, elsewhere = uuid.uuid4(), uuid.uuid4()
    sub = Subscriber(user_id=uuid.uuid4())
    hub.subscribe(sub, followed, (True, False))
    values = [100.0 + i for i in range(30)]
    updates = [
        live.DeviceUpdate(
            followed if i % 3 == 0 else elsewhere,
            uuid.uuid4(),
            "glucose",
            live.LiveReading(1.7e9 + i, v),
        )
        for i, v in enumerate(values)
    ]
    payload = live.SEPARATOR.join(live.encode(u) for u in updates)
    hub._on_notify(None, 0, live.CHANNEL, payload)
    assert hub.received == 30
    sent = []
    while not sub.queue.empty():
        sent.append(sub.queue.get_nowait().replace(" ", ""))
    assert len(sent) == 10
    for text, value in zip(sent, values[::3], strict=True):
        assert f'"value":{value}' in text
    await pool.close()


@pytest.mark.parametrize("ts", [1.7e9, 1_764_800_123.456789, 1_764_800_000.9999995])
def test_a_readings_stream_message_shows_ids_as_text_and_its_time_in_iso_8601(ts: float) -> None:
    """The message a stream sends for a reading: the fields of ``StreamReading``, the ids as
    ``str(UUID)`` writes them and the time as ``isoformat`` does (orjson writes both)."""
    profile, device = uuid.uuid4(), uuid.uuid4()
    reading = live.LiveReading(ts, 120.0, -1.5, "FortyFiveDown", 95.0)
    text = reading_message(live.DeviceUpdate(profile, device, "glucose", reading))
    assert text is not None
    assert json.loads(text) == {
        "type": "reading",
        "profile_id": str(profile),
        "device_id": str(device),
        "kind": "glucose",
        "ts": datetime.fromtimestamp(ts, UTC).isoformat(),
        "value": 120.0,
        "rate_per_min": -1.5,
        "direction": "FortyFiveDown",
        "prediction_20": 95.0,
    }
    assert StreamReading.model_validate_json(text).profile_id == profile
    assert reading_message(live.DeviceUpdate(profile, device, "glucose", None)) is None
