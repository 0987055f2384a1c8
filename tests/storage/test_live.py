"""The live-message contract: every kind survives encode/decode, and what the SQL triggers
and storage functions really NOTIFY (on a real PostgreSQL) decodes to the expected message."""

from __future__ import annotations

import random
import time
import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime

import asyncpg
import psycopg
import pytest

from storage import alerts, live, sessions
from storage.live import (
    AccountEnded,
    DeviceUpdate,
    LiveAlert,
    LiveMessage,
    LiveReading,
    PersonalChanged,
    ShareChanged,
)
from tests.helpers import insert_device

P, D, U = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
ALERT = LiveAlert(
    uuid.uuid4(), "high", "fired", "warning", 260.5, 250.0, 1.7e9, 1.7e9 + 2, 1.7e9 + 3
)


UPDATES = [
    DeviceUpdate(P, D, "glucose", LiveReading(1.7e9, 120.0, -1.5, "FortyFiveDown", 95.0)),
    DeviceUpdate(P, D, "glucose", None, (ALERT,)),
    DeviceUpdate(P, D, None, None, (ALERT, LiveAlert(U, "low", "cleared", "warning",
                                                     None, 70.0, 1.7e9, 1.7e9, None))),
    DeviceUpdate(P, D, "temperature", LiveReading(1.7e9, 37.2)),
]  # fmt: skip


@pytest.mark.parametrize(
    "msg",
    [
        *UPDATES,
        AccountEnded(U, "logout"),
        ShareChanged(P, U),
        PersonalChanged(P, U),
    ],
    ids=["reading", "alert", "escalation-and-clear", "temperature", "account", "share", "prefs"],
)  # fmt: skip
def test_every_kind_survives_the_round_trip(msg: LiveMessage) -> None:
    payload = live.encode(msg)
    assert len(payload) < 8000  # PostgreSQL's limit for a NOTIFY payload
    assert live.decode(payload) == msg


def test_a_device_update_decodes_alike_with_its_profile_read_from_its_head() -> None:
    for msg in UPDATES:
        payload = live.encode(msg)
        assert live.decode(payload, live.update_profile(payload)) == live.decode(payload) == msg


@pytest.mark.parametrize("request_id", [None, "req-1"])
def test_a_device_update_encoded_from_its_fields_is_the_messages_payload(
    request_id: str | None,
) -> None:
    """What a shard sends without making the message: the same text as ``encode``, ids
    written as ``str(UUID)`` writes them."""
    for msg in UPDATES:
        msg = replace(msg, request_id=request_id)
        r = msg.reading
        fields = (
            None if r is None else (r.ts_s, r.value, r.rate_per_min, r.direction, r.prediction_20)
        )
        payload = live.encode_update(
            msg.profile_id, msg.device_id, msg.kind, fields, msg.alerts, request_id
        )
        assert payload == live.encode(msg)
        assert f'"p":"{msg.profile_id}","d":"{msg.device_id}"' in payload
        for a in msg.alerts:
            assert f'"id":"{a.id}"' in payload
        assert ('"rid":"req-1"' in payload) == bool(msg.alerts and request_id)
        sent = replace(msg, request_id=request_id if msg.alerts else None)  # only with alerts
        assert live.decode(payload) == sent


def test_ids_read_from_the_database_are_written_as_any_other() -> None:
    """asyncpg reads a uuid column as its own UUID type, which orjson does not write: the
    notifier's escalations and a shard's alerts loaded from the database carry those."""
    pg = asyncpg.pgproto.pgproto.UUID
    alert = replace(ALERT, id=pg(str(ALERT.id)))
    msg = DeviceUpdate(pg(str(P)), pg(str(D)), "glucose", None, (alert,), "req-2")
    payload = live.encode(msg)
    assert payload == live.encode(DeviceUpdate(P, D, "glucose", None, (ALERT,), "req-2"))
    assert live.decode(payload) == msg


def test_iso_writes_what_isoformat_writes() -> None:
    """Every channel's times: the text ``datetime.isoformat`` gives for the UTC time, whole
    seconds (no fraction), microseconds rounded as ``fromtimestamp`` rounds them, far
    dates and None."""
    rng = random.Random(12)
    times = [rng.uniform(0, 4.1e9) for _ in range(20_000)]
    times += [float(rng.randrange(0, 4_100_000_000)) for _ in range(1_000)]
    times += [0.0, 1e-7, 1_764_800_000.0000005, 1_764_800_000.9999995, 253_402_300_799.0]
    for t in times:
        assert live.iso(t) == datetime.fromtimestamp(t, UTC).isoformat(), t
    assert live.iso(None) is None


def test_a_device_update_names_its_profile_in_its_head() -> None:
    """``update_profile`` reads the profile of every device update without decoding it, and
    finds none in any other message or in text that only looks like one."""
    for msg in UPDATES:
        assert live.update_profile(live.encode(msg)) == msg.profile_id
    for other in (AccountEnded(U, "logout"), ShareChanged(P, U), PersonalChanged(P, U)):
        assert live.update_profile(live.encode(other)) is None
    head = '{"p":"' + str(P)
    for payload in ("", "{}", '{"p":"x"}', head[:-1] + '"}', head + 'x"}', '{"p": "' + str(P)):
        assert live.update_profile(payload) is None, payload
    assert live.update_profile(head + '"}') == P  # the head alone decides; decode checks


@pytest.mark.parametrize("payload", ["not json", "[]", '{"p": "x"}', '{"revoked": "nope"}', "{}"])
def test_a_payload_that_is_not_ours_decodes_to_none(payload: str) -> None:
    assert live.decode(payload) is None


@pytest.fixture
def listener(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"LISTEN {live.CHANNEL}")
        yield conn


def received(conn: psycopg.Connection) -> list[LiveMessage | None]:
    """Every message on the channel within a second (each writer commits before this)."""
    return [live.decode(m) for n in conn.notifies(timeout=1.0) for m in live.messages(n.payload)]


def test_a_payload_of_several_messages_comes_apart_line_by_line() -> None:
    """No encoded message has a line break, even one whose text has them, so messages
    joined by lines come apart whole and in order; a single message is itself."""
    tricky = DeviceUpdate(P, D, "glucose\nx", None, (ALERT,), request_id="a\nb\r\nc")
    encoded = [live.encode(m) for m in [*UPDATES, tricky, AccountEnded(U, "logout")]]
    assert not any("\n" in e for e in encoded)
    assert live.messages(live.SEPARATOR.join(encoded)) == encoded
    assert live.decode(live.messages(live.SEPARATOR.join(encoded))[4]) == tricky
    assert live.messages(encoded[0]) == [encoded[0]]


def test_the_account_trigger_sends_account_ended(
    db: psycopg.Connection, listener: psycopg.Connection
) -> None:
    user, _, _ = insert_device(db)
    db.execute("UPDATE users SET password_hash = 'y' WHERE id = %s", (user,))
    db.execute("UPDATE users SET disabled_at = now() WHERE id = %s", (user,))
    db.execute("DELETE FROM users WHERE id = %s", (user,))
    got = [m for m in received(listener) if isinstance(m, AccountEnded)]
    assert got == [
        AccountEnded(user, "password"),
        AccountEnded(user, "disabled"),
        AccountEnded(user, "deleted"),
    ]


def test_the_share_trigger_sends_share_changed(
    db: psycopg.Connection, listener: psycopg.Connection
) -> None:
    owner, profile, _ = insert_device(db)
    follower, _, _ = insert_device(db)
    share = db.execute(
        "INSERT INTO shares (profile_id, invited_by, invited_email, follower_id, scopes, state,"
        " expires_at, accepted_at) SELECT %s, %s, email, id, ARRAY['readings'], 'active',"
        " now() + interval '7 days', now() FROM users WHERE id = %s RETURNING id",
        (profile, owner, follower),
    ).fetchone()[0]
    db.execute("UPDATE shares SET state = 'revoked' WHERE id = %s", (share,))
    got = [m for m in received(listener) if isinstance(m, ShareChanged)]
    assert got == [ShareChanged(profile, follower)]


async def test_storage_writers_send_typed_messages(
    database_url: str, db: psycopg.Connection, listener: psycopg.Connection
) -> None:
    user, profile, device = insert_device(db)
    alert_id = uuid.uuid4()
    db.execute(
        "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
        " reading_ts, received_at, fired_at) VALUES (%s, %s, %s, 'high', 'warning', 260, 250,"
        " now(), now(), now())",
        (alert_id, profile, device),
    )
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        await alerts.act_for_self(pool, alert_id, user, acknowledge=True)
        await sessions.revoke_all_logins(pool, user)
    finally:
        await pool.close()
    got = [m for m in received(listener) if not isinstance(m, DeviceUpdate)]
    assert got == [PersonalChanged(profile, user), AccountEnded(user, "logout")]


async def test_a_committed_batch_notifies_its_device_update(
    database_url: str, db: psycopg.Connection, listener: psycopg.Connection
) -> None:
    _, profile, device = insert_device(db)
    now = time.time()
    op = alerts.AlertOp("fired", uuid.uuid4(), "high", "warning", 260.0, 250.0, now, now, now)
    update = DeviceUpdate(profile, device, "glucose", LiveReading(now, 260.0), (op.live(),))
    write = alerts.AlertWrite(device, profile, ops=[op], notify=live.encode(update))
    async with (
        await psycopg.AsyncConnection.connect(database_url) as conn,
        conn.transaction(),
        conn.cursor() as cur,
    ):
        await alerts.write_in_transaction(cur, [write])
    # The channel is the whole database's: the running stack's shards send on it too.
    got = [m for m in received(listener) if isinstance(m, DeviceUpdate) and m.device_id == device]
    assert got == [update]


async def test_only_a_commit_that_changes_an_alert_notifies_the_alerts_channel(
    database_url: str, db: psycopg.Connection
) -> None:
    """The notifier listens on ``vigil_alerts``: it hears each alert change once and none of
    the readings, which still reach ``vigil_live``."""
    _, profile, device = insert_device(db)
    plain = DeviceUpdate(profile, device, "glucose", LiveReading(1.7e9, 120.0))
    fired = alerts.AlertOp(
        "fired", uuid.uuid4(), "high", "warning", 260.0, 250.0, 1.7e9, 1.7e9 + 2, 1.7e9 + 3
    )
    alerted = DeviceUpdate(profile, device, "glucose", LiveReading(1.7e9, 260.0), (fired.live(),))
    writes = [
        alerts.AlertWrite(device, profile, None, [], live.encode(plain)),
        alerts.AlertWrite(device, profile, None, [fired], live.encode(alerted)),
    ]
    with psycopg.connect(database_url, autocommit=True) as hears:
        hears.execute(f"LISTEN {live.CHANNEL}")
        hears.execute(f"LISTEN {live.ALERTS_CHANNEL}")
        conn = await psycopg.AsyncConnection.connect(database_url)
        async with conn, conn.transaction(), conn.cursor() as cur:
            await alerts.write_in_transaction(cur, writes)
        got = [
            (n.channel, live.decode(m))
            for n in hears.notifies(timeout=1.0)
            for m in live.messages(n.payload)
        ]
    mine = [(c, m) for c, m in got if isinstance(m, DeviceUpdate) and m.device_id == device]
    assert mine == [
        (live.CHANNEL, plain),
        (live.CHANNEL, alerted),
        (live.ALERTS_CHANNEL, alerted),
    ]
