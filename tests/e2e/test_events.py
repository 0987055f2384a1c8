"""Events: create (idempotent with a key), read, edit, delete, list by window; clear 422s."""

from __future__ import annotations

import uuid

from tests.helpers import minutes_ago, sign_up


def _self_profile(account) -> str:
    return account.client.get("/v1/profiles", headers=account.headers).json()[0]["id"]


def test_events_round_trip_with_idempotent_retries(account) -> None:
    c, h = account.client, account.headers
    pid = _self_profile(account)
    url = f"/v1/profiles/{pid}/events"
    when = minutes_ago(90).astimezone().isoformat()
    meal = {"kind": "meal", "ts": when, "details": {"carbs_g": 45, "description": "porridge"}}
    key = str(uuid.uuid4())

    first = c.post(url, json=meal, headers={**h, "Idempotency-Key": key})
    assert first.status_code == 201, first.text
    retry = c.post(url, json=meal, headers={**h, "Idempotency-Key": key})
    assert retry.status_code == 200, retry.text
    assert retry.json() == first.json()
    assert retry.headers["Idempotent-Replayed"] == "true"
    # The key may also travel in the body; a different key is a different event.
    body_key = c.post(url, json={**meal, "idempotency_key": key}, headers=h)
    assert body_key.json()["id"] == first.json()["id"]
    other = c.post(url, json={**meal, "idempotency_key": str(uuid.uuid4())}, headers=h)
    assert other.status_code == 201 and other.json()["id"] != first.json()["id"]

    insulin = {
        "kind": "insulin",
        "ts": minutes_ago(80).isoformat(),
        "details": {"units": 4.5, "insulin_type": "rapid"},
    }
    assert c.post(url, json=insulin, headers=h).status_code == 201
    sleep = {
        "kind": "sleep",
        "ts": minutes_ago(600).isoformat(),
        "end_ts": minutes_ago(120).isoformat(),
    }
    assert c.post(url, json=sleep, headers=h).status_code == 201

    listed = c.get(url, params={"start": minutes_ago(100).isoformat()}, headers=h).json()
    assert [e["kind"] for e in listed] == ["meal", "meal", "insulin"]
    assert listed[0]["details"] == {"carbs_g": 45, "description": "porridge"}
    only = c.get(url, params={"kind": ["sleep"]}, headers=h).json()
    assert [e["kind"] for e in only] == ["sleep"]

    eid = first.json()["id"]
    edited = c.put(
        f"{url}/{eid}",
        json={**meal, "details": {"carbs_g": 60}, "note": "bigger bowl"},
        headers=h,
    )
    assert edited.status_code == 200, edited.text
    got = c.get(f"{url}/{eid}", headers=h).json()
    assert (got["details"], got["note"]) == ({"carbs_g": 60}, "bigger bowl")

    assert c.delete(f"{url}/{eid}", headers=h).json() == {"deleted": True}
    assert c.get(f"{url}/{eid}", headers=h).status_code == 404
    assert c.delete(f"{url}/{eid}", headers=h).status_code == 404
    assert len(c.get(url, headers=h).json()) == 3


def test_invalid_events_get_422_naming_the_field(account) -> None:
    c, h = account.client, account.headers
    url = f"/v1/profiles/{_self_profile(account)}/events"
    now = minutes_ago(0).isoformat()

    r = c.post(url, json={"kind": "meal", "ts": now, "details": {"carbs_g": 900}}, headers=h)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-2:] == ["details", "carbs_g"]

    r = c.post(url, json={"kind": "insulin", "ts": now, "details": {"units": 3}}, headers=h)
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"][-1] == "insulin_type"

    r = c.post(url, json={"kind": "picnic", "ts": now}, headers=h)
    assert r.status_code == 422 and "meal" in r.json()["detail"][0]["msg"]

    r = c.post(url, json={"kind": "note", "ts": "2026-11-24T07:00:00"}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "ts"

    r = c.post(
        url,
        json={"kind": "sleep", "ts": now, "end_ts": minutes_ago(60).isoformat()},
        headers=h,
    )
    assert r.status_code == 422 and "end_ts" in r.json()["detail"][0]["msg"]

    r = c.post(url, json={"kind": "note", "ts": now}, headers=h)
    assert r.status_code == 422 and "note" in r.json()["detail"][0]["msg"]

    r = c.post(url, json={"kind": "note", "ts": now, "note": "a\x00b"}, headers=h)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"][-1] == "note"

    r = c.post(
        url,
        json={"kind": "note", "ts": now, "note": "x", "idempotency_key": "a"},
        headers={**h, "Idempotency-Key": "b"},
    )
    assert r.status_code == 422 and "Idempotency-Key" in r.json()["detail"]


def test_strangers_cannot_see_or_add_events(account) -> None:
    c = account.client
    url = f"/v1/profiles/{_self_profile(account)}/events"
    stranger = sign_up(c)
    note = {"kind": "note", "ts": minutes_ago(5).isoformat(), "note": "hello"}
    assert c.post(url, json=note, headers=stranger.headers).status_code == 404
    assert c.get(url, headers=stranger.headers).status_code == 404
