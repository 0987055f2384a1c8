"""Profiles: a user's own and their dependents', each with their own devices."""

from __future__ import annotations

from tests.helpers import minutes_ago, series, sign_up


def test_signup_creates_a_self_profile_and_devices_default_to_it(account) -> None:
    listed = account.client.get("/v1/profiles", headers=account.headers).json()
    assert [(p["kind"], p["role"]) for p in listed] == [("self", "manager")]
    device = account.device("glucose")
    assert device["profile_id"] == listed[0]["id"]


def test_a_dependent_profile_has_its_own_devices(account) -> None:
    c, h = account.client, account.headers
    child = c.post("/v1/profiles", json={"name": "Mia", "timezone": "Europe/Paris"}, headers=h)
    assert child.status_code == 201, child.text
    child = child.json()
    assert (child["kind"], child["role"], child["timezone"]) == (
        "dependent",
        "manager",
        "Europe/Paris",
    )
    cgm = account.device("glucose", profile_id=child["id"])
    assert cgm["profile_id"] == child["id"]
    assert account.upload(cgm["id"], series(minutes_ago(30), 5, 300, 140, 0)).status_code == 200
    mine = c.get("/v1/devices", params={"profile_id": child["id"]}, headers=h).json()
    assert [d["id"] for d in mine] == [cgm["id"]]
    assert c.get(f"/v1/profiles/{child['id']}", headers=h).json()["name"] == "Mia"


def test_nobody_else_sees_or_adds_to_my_profiles(account) -> None:
    c, h = account.client, account.headers
    child = c.post("/v1/profiles", json={"name": "Ben"}, headers=h).json()
    stranger = sign_up(c)
    assert c.get(f"/v1/profiles/{child['id']}", headers=stranger.headers).status_code == 404
    r = c.post(
        "/v1/devices",
        json={"kind": "glucose", "serial": "x1", "profile_id": child["id"]},
        headers=stranger.headers,
    )
    assert r.status_code == 404
    assert child["id"] not in {
        p["id"] for p in c.get("/v1/profiles", headers=stranger.headers).json()
    }


def test_unknown_time_zone_is_named(account) -> None:
    r = account.client.post(
        "/v1/profiles", json={"name": "X", "timezone": "Mars/Olympus"}, headers=account.headers
    )
    assert r.status_code == 422
    assert r.json()["detail"][0]["loc"] == ["body", "timezone"]
    assert "Mars/Olympus" in r.json()["detail"][0]["msg"]


def test_nul_character_in_text_is_a_clear_422_not_a_server_error(account) -> None:
    r = account.client.post("/v1/profiles", json={"name": "Mi\u0000a"}, headers=account.headers)
    assert r.status_code == 422
    assert "NUL" in r.json()["detail"][0]["msg"]
