"""Delivery that outlasts an outage (issue 17 part 6): a real webhook receiver down far
longer than the old in-memory retries lasted (~15 s), across a notifier restart, gets every
alert exactly once when it comes back; past the horizon a delivery is given up and shown.

The schedule is scaled down by its settings (0.2 s doubling to 2 s, a minute's horizon) so
the drill takes about half a minute; docs/operations.md states the default's figures (a
receiver down for up to 58 minutes), which tests/algorithms/test_delivery.py proves."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter

import psycopg
import pytest

from actors.notifier import AlertNotifier, NotifierConfig
from algorithms.delivery import RetrySchedule
from storage.embedded import free_port
from storage.live import LiveAlert
from storage.notifications import new_webhook_secret
from tests.e2e.test_delivery import Receiver
from tests.helpers import insert_device

SCALED = RetrySchedule(base_s=0.2, factor=2.0, max_s=2.0, horizon_s=60.0)
RULES = ("urgent_low", "urgent_low_soon", "low", "high", "rising_fast")


@pytest.fixture
def database_url(fresh_database_url: str) -> str:
    """A database of this test's own: the notifier's catch-up and retry clock see only its
    alerts, not the deliveries that tests run before it left due."""
    return fresh_database_url


def notifier(database_url: str, schedule: RetrySchedule = SCALED) -> AlertNotifier:
    return AlertNotifier(
        NotifierConfig(
            database_url,
            retry=schedule,
            queue_poll_s=0.5,
            claim_s=3.0,
            http_timeout_s=2.0,
            escalation_check_s=3600,
            webhook_allow_private=True,  # the receiver listens on 127.0.0.1
        )
    )


def new_alert(
    db: psycopg.Connection, profile: uuid.UUID, device: uuid.UUID, rule: str
) -> LiveAlert:
    """A fired alert, notified now (what a shard commits before the notifier hears of it)."""
    alert_id = uuid.uuid4()
    db.execute(
        "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
        " reading_ts, received_at, fired_at, notified_at) VALUES (%s, %s, %s, %s, 'urgent',"
        " 50, 55, now(), now(), now(), ARRAY[now()])",
        (alert_id, profile, device, rule),
    )
    now = time.time()
    return LiveAlert(alert_id, rule, "fired", "urgent", 50.0, 55.0, now, now, now)


def queued(db: psycopg.Connection, alerts: list[LiveAlert]) -> int:
    return db.execute(
        "SELECT count(*) FROM delivery_queue WHERE alert_id = ANY(%s)", ([a.id for a in alerts],)
    ).fetchone()[0]


def gave_up(db: psycopg.Connection, a: LiveAlert) -> bool:
    return bool(
        db.execute(
            "SELECT count(*) FROM alert_deliveries WHERE alert_id = %s AND status = 'gave_up'",
            (a.id,),
        ).fetchone()[0]
    )


async def until(check, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


async def test_a_receiver_down_across_a_notifier_restart_gets_every_alert_exactly_once(
    database_url: str, db: psycopg.Connection
) -> None:
    user, profile, device = insert_device(db, interval_s=300)
    port = free_port()  # nothing listens yet: connections are refused
    db.execute(
        "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, %s)",
        (user, f"http://127.0.0.1:{port}/hook", new_webhook_secret()),
    )
    alerts: list[LiveAlert] = []
    first, receiver, second = notifier(database_url), None, notifier(database_url)
    started = time.monotonic()
    try:
        await first.start()
        # fired while this notifier listens (what came before, its catch-up sends)
        alerts += [new_alert(db, profile, device, rule) for rule in RULES[:3]]
        for a in alerts[:3]:
            assert await first.dispatch(str(profile), str(device), a, "fired") == 1
        await asyncio.sleep(6)  # refused, retried from the database meanwhile
        await first.stop()  # the notifier restarts with every delivery still to be made
        assert queued(db, alerts) == 3

        receiver = Receiver(port=port)  # back, but answering 503 for now
        receiver.answer = 503
        await second.start()  # its catch-up must not queue the same alerts again
        alerts += [new_alert(db, profile, device, rule) for rule in RULES[3:]]
        for a in alerts[3:]:
            assert await second.dispatch(str(profile), str(device), a, "fired") == 1
        await asyncio.sleep(max(0.0, 22 - (time.monotonic() - started)))  # well past ~15 s
        assert receiver.requests and not receiver.delivered()
        receiver.answer = None  # healthy again
        await until(lambda: len(receiver.delivered()) >= 5, 15, "every alert")
        await until(lambda: queued(db, alerts) == 0, 5, "an empty queue")
        await asyncio.sleep(2 * SCALED.max_s)  # nothing more arrives
    finally:
        await first.stop()
        await second.stop()
        if receiver is not None:
            receiver.close()

    delivered = receiver.delivered()
    assert Counter(p["alert"]["id"] for p in delivered) == Counter(str(a.id) for a in alerts)
    # one webhook-id per alert, on every attempt before and after the restart
    ids: dict[str, set[str]] = {}
    for headers, body, _code in receiver.requests:
        ids.setdefault(json.loads(body)["alert"]["id"], set()).add(headers["webhook-id"])
    assert all(len(one) == 1 for one in ids.values()), ids
    assert len({p["_headers"]["webhook-id"] for p in delivered}) == 5
    log = db.execute(
        "SELECT alert_id, array_agg(status ORDER BY attempt), array_agg(detail ORDER BY attempt),"
        " array_agg(attempt ORDER BY attempt) FROM alert_deliveries"
        " WHERE alert_id = ANY(%s) GROUP BY alert_id",
        ([a.id for a in alerts],),
    ).fetchall()
    assert len(log) == 5
    for alert_id, statuses, details, attempts in log:
        assert statuses[-1] == "delivered" and set(statuses[:-1]) == {"retrying"}, statuses
        assert attempts == list(range(1, len(attempts) + 1))  # counted on across the restart
        assert "receiver answered HTTP 503" in details, details
        if alert_id in {a.id for a in alerts[:3]}:
            assert "could not connect" in details, details


async def test_past_the_horizon_a_delivery_is_given_up_and_shown(
    database_url: str, db: psycopg.Connection
) -> None:
    user, profile, device = insert_device(db, interval_s=300)
    db.execute(
        "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, %s)",
        (user, f"http://127.0.0.1:{free_port()}/hook", new_webhook_secret()),
    )
    short = notifier(database_url, RetrySchedule(base_s=0.2, factor=2, max_s=1, horizon_s=2))
    try:
        await short.start()
        a = new_alert(db, profile, device, "urgent_low")  # fired while it listens
        assert await short.dispatch(str(profile), str(device), a, "fired") == 1
        await until(lambda: gave_up(db, a), 6, "the delivery given up")
        await asyncio.sleep(1.5)  # nothing more is attempted
    finally:
        await short.stop()
    log = db.execute(
        "SELECT attempt, status, extract(epoch FROM at - min(at) OVER ())::float8"
        " FROM alert_deliveries WHERE alert_id = %s ORDER BY id",
        (a.id,),
    ).fetchall()
    statuses = [s for _attempt, s, _at in log]
    assert statuses[-1] == "gave_up" and set(statuses[:-1]) == {"retrying"}, log
    assert [n for n, _s, _at in log] == list(range(1, len(log) + 1)), log  # one delivery
    assert 3 <= len(log) <= 6, log  # attempts at 0, 0.2, 0.6, 1.4 s (2 s horizon)
    assert log[-1][2] <= 2.0 + 1.0, log  # none started after the horizon (1 s: its own run)
    # counted (with what it gave up of earlier tests' alerts: its clock reads the whole queue)
    assert short.failed >= 1 and queued(db, [a]) == 0


async def test_an_alert_caught_up_and_notified_at_once_is_delivered_once(
    database_url: str, db: psycopg.Connection
) -> None:
    """A notifier starting sends what was notified before it listened (its catch-up); an
    alert whose NOTIFY also reaches it (committed as the LISTEN began) is dispatched twice,
    and must still be queued and delivered once, under one webhook-id."""
    user, profile, device = insert_device(db, interval_s=300)
    receiver = Receiver()
    db.execute(
        "INSERT INTO webhooks (user_id, url, secret) VALUES (%s, %s, %s)",
        (user, receiver.url, new_webhook_secret()),
    )
    alerts = [new_alert(db, profile, device, rule) for rule in RULES[:3]]
    one = notifier(database_url)
    try:
        await one.start()  # its catch-up dispatches the three alerts...
        dispatched = await asyncio.gather(  # ...and so does their NOTIFY, at the same time
            *(one.dispatch(str(profile), str(device), a, "fired") for a in alerts)
        )
        await until(lambda: len(receiver.delivered()) >= 3, 10, "every alert")
        await one.drain(5)
        await asyncio.sleep(1)  # a second copy would arrive meanwhile
    finally:
        await one.stop()
        receiver.close()
    assert sum(dispatched) <= 3
    delivered = receiver.delivered()
    assert Counter(p["alert"]["id"] for p in delivered) == Counter(str(a.id) for a in alerts)
    assert len(receiver.requests) == 3
    assert (
        db.execute(
            "SELECT count(*) FROM alert_deliveries WHERE alert_id = ANY(%s)",
            ([a.id for a in alerts],),
        ).fetchone()[0]
        == 3
    )
