"""The ingest path over real HTTP, Serve, Ray shard actors and PostgreSQL."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import timedelta

import httpx
import psycopg
import ray

from actors.router import ShardRouter, shard_index, shard_name
from actors.shard import ShardConfig
from tests.helpers import Account, minutes_ago, self_profile, series


def stored(db: psycopg.Connection, device_id: str) -> list[tuple]:
    return db.execute(
        "SELECT ts, value FROM readings WHERE device_id = %s ORDER BY ts", (device_id,)
    ).fetchall()


def test_batch_is_stored_with_trend_and_latest_reflects_it(account: Account, db) -> None:
    device = account.device("glucose")
    readings = series(minutes_ago(60), 12, 300, 180.0, -2.5)
    r = account.upload(device["id"], readings)
    assert r.status_code == 200, r.text
    assert r.json() == {"accepted": 12, "duplicates": 0}
    assert len(stored(db, device["id"])) == 12

    latest = account.client.get(f"/v1/devices/{device['id']}/latest", headers=account.headers)
    assert latest.status_code == 200
    body = latest.json()
    assert body["value"] == readings[-1]["value"]
    assert body["unit"] == "mg/dL"
    assert abs(body["trend"]["rate_per_min"] - (-2.5)) < 1e-3
    assert body["trend"]["direction"] == "SingleDown"


def test_resent_batch_counts_duplicates_and_is_stored_once(account: Account, db) -> None:
    device = account.device("glucose")
    t0 = minutes_ago(50)
    readings = series(t0, 10, 300, 120.0, 0.0)
    assert account.upload(device["id"], readings).json() == {"accepted": 10, "duplicates": 0}
    assert account.upload(device["id"], readings).json() == {"accepted": 0, "duplicates": 10}
    # Overlapping re-send: half old, half new; and a repeat inside the batch itself.
    more = series(t0 + timedelta(minutes=25), 10, 150, 120.0, 0.0)
    overlap = [r for r in more if r["ts"] in {x["ts"] for x in readings}]
    assert len(overlap) == 5
    r = account.upload(device["id"], [*more, more[-1]])
    assert r.json() == {"accepted": 10 - len(overlap), "duplicates": len(overlap) + 1}
    rows = stored(db, device["id"])
    assert len(rows) == len({row[0] for row in rows}) == 20 - len(overlap)


def test_duplicates_are_found_in_the_database_after_state_is_evicted(
    account: Account, db, stack
) -> None:
    device = account.device("temperature")
    readings = series(minutes_ago(300), 30, 60, 36.8, 0.0)
    assert account.upload(device["id"], readings).json()["accepted"] == 30
    device_id = uuid.UUID(device["id"])
    shard = ray.get_actor(
        shard_name(shard_index(device_id, stack.settings.shard_count)),
        namespace=stack.settings.namespace,
    )
    assert ray.get(shard.evict.remote(device_id))  # in-memory state gone: only the DB knows
    assert account.upload(device["id"], readings).json() == {"accepted": 0, "duplicates": 30}
    assert len(stored(db, device["id"])) == 30


def test_readings_are_listed_in_time_order_with_bounds_and_limit(account: Account) -> None:
    device = account.device("glucose")
    readings = series(minutes_ago(100), 20, 300, 100.0, 1.0)
    shuffled = readings[::2] + readings[1::2]
    assert account.upload(device["id"], shuffled).status_code == 200
    url = f"/v1/devices/{device['id']}/readings"
    listed = account.client.get(url, headers=account.headers).json()
    assert [r["ts"] for r in listed] == sorted(r["ts"] for r in listed)
    assert len(listed) == 20
    window = account.client.get(
        url,
        params={"start": readings[5]["ts"], "end": readings[9]["ts"], "limit": 3},
        headers=account.headers,
    ).json()
    assert [r["value"] for r in window] == [readings[i]["value"] for i in (5, 6, 7)]


def test_ten_thousand_readings_over_100_devices_concurrently_stored_exactly_once(
    account: Account, db
) -> None:
    devices = [account.device("glucose")["id"] for _ in range(100)]
    start = minutes_ago(600)
    batch = series(start, 100, 300, 150.0, 0.1)

    async def send_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=str(account.client.base_url), timeout=120) as c:
            limit = asyncio.Semaphore(32)

            async def send(device_id: str) -> httpx.Response:
                async with limit:
                    return await c.post(
                        f"/v1/devices/{device_id}/readings",
                        json={"readings": batch},
                        headers=account.headers,
                    )

            # Every batch twice, concurrently: the second copy must count as duplicates.
            return await asyncio.gather(*(send(d) for d in devices + devices))

    responses = asyncio.run(send_all())
    assert all(r.status_code == 200 for r in responses), {r.status_code for r in responses}
    assert sum(r.json()["accepted"] for r in responses) == 10_000
    assert sum(r.json()["duplicates"] for r in responses) == 10_000
    total, distinct = db.execute(
        "SELECT count(*), count(DISTINCT (device_id, ts)) FROM readings WHERE device_id = ANY(%s)",
        ([uuid.UUID(d) for d in devices],),
    ).fetchone()
    assert total == distinct == 10_000


def test_acknowledged_readings_survive_a_shard_kill_and_the_trend_continues(
    account: Account, db, stack
) -> None:
    device = account.device("glucose")
    start = minutes_ago(120)
    line = series(start, 24, 300, 250.0, -1.5)  # two hours falling at 1.5 mg/dL/min
    first, rest = line[:20], line[20:]
    for i in range(0, 20, 5):
        assert account.upload(device["id"], first[i : i + 5]).status_code == 200

    index = shard_index(uuid.UUID(device["id"]), stack.settings.shard_count)
    shard = ray.get_actor(shard_name(index), namespace=stack.settings.namespace)
    before = ray.get(shard.status.remote())
    assert before["channel_calls"] >= 4  # the uploads went on the shard's ingest channel
    ray.kill(shard, no_restart=False)
    assert len(stored(db, device["id"])) == 20  # everything acknowledged is committed

    deadline = time.monotonic() + 60
    while True:  # Ray restarts the shard; the first upload after it rebuilds the state
        r = account.upload(device["id"], rest[:1])
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    after = ray.get(shard.status.remote())
    assert after["pid"] != before["pid"]
    assert after["channel_calls"] >= 1  # the replica opened a channel to the new process
    assert account.upload(device["id"], rest[1:]).json() == {"accepted": 3, "duplicates": 0}
    assert len(stored(db, device["id"])) == 24
    trend = db.execute(
        "SELECT rate_per_min, direction FROM readings WHERE device_id = %s AND ts >= %s",
        (device["id"], rest[0]["ts"]),
    ).fetchall()
    # The first reading after the restart already has a trend: history came from the database.
    assert all(abs(rate - (-1.5)) < 1e-3 and d == "FortyFiveDown" for rate, d in trend)


def test_temperature_device_gets_degrees_and_its_own_arrows(account: Account) -> None:
    device = account.device("temperature")
    assert device["interval_s"] == 60
    account.upload(device["id"], series(minutes_ago(30), 30, 60, 37.0, 0.06))
    body = account.client.get(f"/v1/devices/{device['id']}/latest", headers=account.headers).json()
    assert body["unit"] == "°C"
    assert body["trend"]["direction"] == "SingleUp"


def test_a_temperature_device_keeps_its_body_site_by_period(account: Account, db) -> None:
    device = account.device("temperature")
    url, headers = f"/v1/devices/{device['id']}/readings", account.headers
    before = series(minutes_ago(40), 5, 60, 36.5, 0.0)  # no site reported yet
    axilla = series(minutes_ago(30), 10, 60, 36.6, 0.0)
    chest = series(minutes_ago(15), 10, 60, 36.9, 0.0)
    assert account.upload(device["id"], before).status_code == 200
    for batch, site in ((axilla, "axilla"), (axilla[5:], "axilla"), (chest, "chest")):
        r = account.client.post(url, json={"readings": batch, "body_site": site}, headers=headers)
        assert r.status_code == 200, r.text
    # A re-sent batch at the same site opens no second period.
    periods = db.execute(
        "SELECT body_site FROM device_body_sites WHERE device_id = %s ORDER BY since",
        (device["id"],),
    ).fetchall()
    assert [p[0] for p in periods] == ["axilla", "chest"]

    listed = account.client.get(url, params={"limit": 100}, headers=headers).json()
    sites = [x["body_site"] for x in listed]
    assert sites == [None] * 5 + ["axilla"] * 10 + ["chest"] * 10
    latest = account.client.get(f"/v1/devices/{device['id']}/latest", headers=headers).json()
    assert latest["body_site"] == "chest"


def test_a_body_site_that_is_unknown_or_on_a_glucose_device_is_refused(
    account: Account, db
) -> None:
    temperature, glucose = account.device("temperature"), account.device("glucose")
    readings = series(minutes_ago(10), 3, 60, 36.6, 0.0)
    r = account.client.post(
        f"/v1/devices/{temperature['id']}/readings",
        json={"readings": readings, "body_site": "elbow"},
        headers=account.headers,
    )
    assert r.status_code == 422
    assert [d["loc"] for d in r.json()["detail"]] == [["body", "body_site"]]
    r = account.client.post(
        f"/v1/devices/{glucose['id']}/readings",
        json={"readings": series(minutes_ago(10), 3, 300, 110, 0.0), "body_site": "axilla"},
        headers=account.headers,
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "body_site"]
    assert "glucose device has no body site" in r.json()["detail"][0]["msg"]
    for device in (temperature, glucose):  # nothing of a refused batch is stored
        assert stored(db, device["id"]) == []
    kept = db.execute(
        "SELECT count(*) FROM device_body_sites WHERE device_id = ANY(%s)",
        ([temperature["id"], glucose["id"]],),
    ).fetchone()[0]
    assert kept == 0


def test_the_body_site_sets_the_skin_to_core_offset_of_the_alerts(account: Account) -> None:
    """The same skin temperature is a fever on the wrist (skin runs about 3 °C under core)
    and not in the armpit (about 0.5 °C): the shard's temperature pipeline takes the site a
    batch names, from that batch on."""
    wrist, axilla = account.device("temperature"), account.device("temperature")
    skin = series(minutes_ago(50), 46, 60, 35.6, 0.0)  # 45 minutes at 35.6 °C
    for device, site in ((wrist, "wrist"), (axilla, "axilla")):
        r = account.client.post(
            f"/v1/devices/{device['id']}/readings",
            json={"readings": skin, "body_site": site},
            headers=account.headers,
        )
        assert r.status_code == 200, r.text
    listed = account.client.get(
        "/v1/alerts", params={"profile_id": self_profile(account)}, headers=account.headers
    )
    assert listed.status_code == 200, listed.text
    fired = {(a["device_id"], a["rule"]): a for a in listed.json()}
    assert set(fired) == {(wrist["id"], "fever")}
    assert abs(fired[(wrist["id"], "fever")]["value"] - (35.6 + 3.0)) < 1e-6


def test_a_shard_stuck_on_the_database_answers_503_within_its_deadline(
    account: Account, database_url: str, db
) -> None:
    """A shard alive (it answers its probe) but held on a database read that gets no answer
    (here: loading a new device while a lock is held on the readings) must not hold the
    client: 503 with Retry-After within the shard's commit timeout (the router's deadline,
    a few seconds later, is the backstop); the batch is stored once when re-sent after the
    lock is gone."""
    device = account.device("glucose")
    readings = series(minutes_ago(30), 3, 300, 120.0, 0.0)
    commit_timeout_s = ShardConfig(database_url="").commit_timeout_s  # the stack's
    deadline_s = ShardRouter(1, shard_config=ShardConfig(database_url="")).ingest_deadline_s
    with psycopg.connect(database_url) as locker:
        locker.execute("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        r = account.upload(device["id"], readings)
        took = time.monotonic() - started
        locker.rollback()
    assert r.status_code == 503, r.text
    assert r.headers["Retry-After"].isdigit(), r.headers
    assert commit_timeout_s - 1 <= took <= deadline_s + 4, took
    deadline = time.monotonic() + 30
    while (r := account.upload(device["id"], readings)).status_code == 503:
        assert time.monotonic() < deadline, r.text
        time.sleep(float(r.headers["Retry-After"]))
    assert r.status_code == 200 and r.json()["accepted"] + r.json()["duplicates"] == 3
    assert len(stored(db, device["id"])) == 3
