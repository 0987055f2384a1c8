"""Alert settings, firing in the device actors, history, acknowledge and snooze, over HTTP."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import ray

from actors.router import shard_index, shard_name
from tests.helpers import Account, minutes_ago, self_profile, share_directly, sign_up


def share(db, owner: Account, profile_id: str, scopes: list[str]) -> Account:
    """A follower of ``profile_id`` with ``scopes`` (the share made directly in the database)."""
    follower = sign_up(owner.client)
    share_directly(db, profile_id, owner.email, follower.email, scopes)
    return follower


def put_settings(account: Account, profile_id: str, body: dict):
    return account.client.put(
        f"/v1/profiles/{profile_id}/alert-settings", json=body, headers=account.headers
    )


def series(start, step_s: float, values) -> list[dict]:
    """Readings of ``values``, ``step_s`` apart from ``start``."""
    return [
        {"ts": (start + timedelta(seconds=step_s * i)).isoformat(), "value": v}
        for i, v in enumerate(values)
    ]


def one_by_one(account: Account, device_id: str, start, step_s: float, values) -> None:
    """Upload readings one batch each, as a phone relays a live sensor."""
    for reading in series(start, step_s, values):
        r = account.upload(device_id, [reading])
        assert r.status_code == 200, r.text


def shard_of(stack, device_id: str):
    """The DeviceShard actor that hosts ``device_id``."""
    index = shard_index(uuid.UUID(device_id), stack.settings.shard_count)
    return ray.get_actor(shard_name(index), namespace=stack.settings.namespace)


def alerts_of(account: Account, profile_id: str, **params) -> list[dict]:
    r = account.client.get(
        "/v1/alerts", params={"profile_id": profile_id, **params}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


FALL = [130 - 3.5 * i for i in range(24)]  # every 30 s: 7 mg/dL/min down to 49.5


def test_a_new_profile_has_clinical_defaults_readable_by_followers(account: Account, db) -> None:
    pid = self_profile(account)
    r = account.client.get(f"/v1/profiles/{pid}/alert-settings", headers=account.headers)
    assert r.status_code == 200, r.text
    body = r.json()
    rules = {x["kind"]: x for x in body["glucose"]}
    assert body["version"] == 0 and body["escalation_min"] == 15
    assert (rules["urgent_low"]["threshold"], rules["urgent_low"]["enabled"]) == (55, True)
    assert (rules["high"]["threshold"], rules["low"]["threshold"]) == (250, 70)
    assert rules["urgent_low"]["severity"] == "urgent" and rules["high"]["unit"] == "mg/dL"
    assert {x["kind"] for x in body["temperature"]} >= {"fever", "high_fever", "hypothermia"}

    watcher = share(db, account, pid, ["alerts"])
    h = watcher.headers
    assert account.client.get(f"/v1/profiles/{pid}/alert-settings", headers=h).status_code == 200
    assert put_settings(watcher, pid, {}).status_code == 403
    stranger = sign_up(account.client)
    url = f"/v1/profiles/{pid}/alert-settings"
    assert account.client.get(url, headers=stranger.headers).status_code == 404


def test_invalid_settings_are_refused_naming_the_problem(account: Account) -> None:
    pid = self_profile(account)
    cases = [
        (
            {"glucose": [{"kind": "low", "threshold": 200}, {"kind": "high", "threshold": 180}]},
            "low must be below high",
        ),
        ({"glucose": [{"kind": "high", "threshold": 700}]}, "outside 20-600 mg/dL"),
        ({"glucose": [{"kind": "urgent_low", "enabled": False}]}, "cannot be disabled"),
        ({"temperature": [{"kind": "fever", "threshold": 50}]}, "outside 25-45"),
        ({"glucose": [{"kind": "fever"}]}, "not a glucose rule"),
        (
            {
                "glucose": [
                    {
                        "kind": "high",
                        "quiet": [
                            {"start": "22:00", "end": "07:00"},
                            {"start": "06:00", "end": "08:00", "weekdays": [2]},
                        ],
                    }
                ]
            },
            "overlaps",
        ),
    ]
    for body, message in cases:
        r = put_settings(account, pid, body)
        assert r.status_code == 422, (body, r.text)
        assert message in str(r.json()["detail"]), (message, r.text)
    r = put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 700}]})
    assert r.json()["detail"][0]["loc"] == ["body", "glucose", 0, "threshold"]
    # Nothing was stored by the refused requests.
    got = account.client.get(f"/v1/profiles/{pid}/alert-settings", headers=account.headers)
    assert got.json()["version"] == 0


def test_a_changed_threshold_applies_from_the_next_reading(account: Account) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    one_by_one(account, device["id"], minutes_ago(10), 60, [200, 200, 200])
    assert alerts_of(account, pid) == []  # 200 is below the default high of 250
    r = put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180}]})
    assert r.status_code == 200, r.text
    assert r.json()["version"] == 1
    assert next(x for x in r.json()["glucose"] if x["kind"] == "high")["threshold"] == 180
    one_by_one(account, device["id"], minutes_ago(6), 60, [201])
    fired = alerts_of(account, pid)
    assert [(a["rule"], a["state"]) for a in fired] == [("high", "fired")]
    assert 180 <= fired[0]["value"] <= 201  # what the rule saw: the filtered value, at most raw


def test_falling_cgm_fires_urgent_low_soon_then_urgent_low_with_its_timeline(
    account: Account, db
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    watcher = share(db, account, pid, ["alerts"])
    reader = share(db, account, pid, ["readings"])
    one_by_one(account, device["id"], minutes_ago(12), 30, FALL)
    history = alerts_of(account, pid)
    order = [a["rule"] for a in sorted(history, key=lambda a: a["fired_at"])]
    assert order.index("urgent_low_soon") < order.index("urgent_low"), order
    urgent = next(a for a in history if a["rule"] == "urgent_low")
    assert urgent["severity"] == "urgent" and urgent["value"] <= 55 and urgent["state"] == "fired"
    assert urgent["reading_ts"] <= urgent["received_at"] <= urgent["fired_at"]
    assert urgent["notified_at"] == [urgent["fired_at"]]
    assert 0 <= urgent["latency_ms"] < 60_000

    assert {a["id"] for a in alerts_of(watcher, pid)} == {a["id"] for a in history}
    r = reader.client.get("/v1/alerts", params={"profile_id": pid}, headers=reader.headers)
    assert r.status_code == 403
    assert reader.client.get("/v1/alerts", headers=reader.headers).json() == []
    assert alerts_of(account, pid, state="cleared") == []
    one = account.client.get(f"/v1/alerts/{urgent['id']}", headers=account.headers)
    assert one.json()["id"] == urgent["id"]
    assert (
        account.client.get(f"/v1/alerts/{urgent['id']}", headers=reader.headers).status_code == 403
    )


def test_acknowledging_stops_the_repeats(account: Account) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    r = put_settings(account, pid, {"glucose": [{"kind": "urgent_low", "realert_min": 1}]})
    assert r.status_code == 200, r.text
    # One batch: the shard's clock (every 30 s) re-alerts a due alert at the wall-clock time,
    # so between single uploads of readings 10 minutes old it could take the next repeat's
    # place (then none of the later readings is a minute past it: 2 notifications, not 5).
    r = account.upload(device["id"], series(minutes_ago(10), 60, [45] * 5))
    assert r.status_code == 200, r.text
    (alert,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]
    assert len(alert["notified_at"]) >= 3  # fired, then repeated every minute
    acked = account.client.post(f"/v1/alerts/{alert['id']}/ack", headers=account.headers)
    assert acked.status_code == 200, acked.text
    assert acked.json()["state"] == "acknowledged" and acked.json()["acknowledged_at"]
    one_by_one(account, device["id"], minutes_ago(4), 60, [45] * 4)
    (after,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]
    assert after["notified_at"] == acked.json()["notified_at"]
    snooze = account.client.post(
        f"/v1/alerts/{alert['id']}/snooze", json={"minutes": 30}, headers=account.headers
    )
    assert snooze.status_code == 422 and "acknowledge" in snooze.text


def test_snoozing_a_high_alert(account: Account) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180, "realert_min": 1}]})
    one_by_one(account, device["id"], minutes_ago(10), 60, [220] * 3)
    (alert,) = alerts_of(account, pid)
    r = account.client.post(
        f"/v1/alerts/{alert['id']}/snooze", json={"minutes": 60}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["snoozed_until"] is not None
    one_by_one(account, device["id"], minutes_ago(6), 60, [220] * 4)
    (after,) = alerts_of(account, pid)
    assert after["notified_at"] == r.json()["notified_at"]


def test_quiet_hours_hold_back_high_but_not_urgent_low(account: Account) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    all_day = [{"start": "00:00", "end": "24:00"}]
    r = put_settings(
        account, pid, {"glucose": [{"kind": "high", "threshold": 180, "quiet": all_day}]}
    )
    assert r.status_code == 200, r.text
    one_by_one(account, device["id"], minutes_ago(14), 60, [260] * 4)
    assert alerts_of(account, pid) == []
    one_by_one(account, device["id"], minutes_ago(8), 60, [45] * 3)
    assert "urgent_low" in {a["rule"] for a in alerts_of(account, pid)}


def test_a_restarted_shard_does_not_refire_and_still_clears(account: Account, stack) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    one_by_one(account, device["id"], minutes_ago(14), 60, [45] * 3)
    (alert,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]

    shard = shard_of(stack, device["id"])
    pid_before = ray.get(shard.status.remote())["pid"]
    ray.kill(shard, no_restart=False)
    start = minutes_ago(10)
    deadline = time.monotonic() + 60
    while True:  # Ray restarts the shard; the first upload after it rebuilds the state
        r = account.upload(device["id"], [{"ts": start.isoformat(), "value": 44}])
        if r.status_code == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert r.status_code == 200, r.text
    assert ray.get(shard.status.remote())["pid"] != pid_before
    one_by_one(account, device["id"], start + timedelta(minutes=1), 60, [44, 43])
    (same,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]
    assert same["id"] == alert["id"] and same["notified_at"] == alert["notified_at"]
    one_by_one(account, device["id"], minutes_ago(6), 60, [60, 70, 80, 90, 100])
    (cleared,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]
    assert cleared["id"] == alert["id"] and cleared["state"] == "cleared"
    assert cleared["cleared_at"] is not None and cleared["clear_value"] >= 65


def test_the_shard_clock_fires_signal_loss_and_a_new_reading_clears_it(
    account: Account, stack
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    one_by_one(account, device["id"], minutes_ago(4), 60, [120, 121, 122])
    shard = shard_of(stack, device["id"])
    assert alerts_of(account, pid) == []
    later = time.time() + 25 * 60  # the clock as it will be in 25 minutes without readings
    assert ray.get(shard.tick.remote(later)) >= 1
    (lost,) = alerts_of(account, pid)
    assert (lost["rule"], lost["state"]) == ("signal_loss", "fired")
    assert ray.get(shard.tick.remote(later + 30)) == 0  # fired once, not on every tick
    one_by_one(account, device["id"], minutes_ago(0), 60, [123])
    (back,) = alerts_of(account, pid)
    assert back["id"] == lost["id"] and back["state"] == "cleared"
