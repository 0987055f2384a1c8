"""Privacy rights: export everything of mine; delete my account and everything of it."""

from __future__ import annotations

import csv
import io
import json
import zipfile

from tests.helpers import minutes_ago, series, share_directly, sign_up, wait_until


def test_export_is_a_zip_of_json_and_csv_with_all_my_data(client, db) -> None:
    me, follower = sign_up(client), sign_up(client)
    child = client.post("/v1/profiles", json={"name": "Mia"}, headers=me.headers).json()
    cgm = me.device("glucose", profile_id=child["id"])
    patch = me.device("temperature")
    assert me.upload(cgm["id"], series(minutes_ago(30), 5, 300, 130, 0.5)).status_code == 200
    share_directly(db, child["id"], me.email, follower.email, ["readings"])
    client.get(f"/v1/devices/{cgm['id']}/latest", headers=follower.headers)
    wait_until(
        lambda: client.get("/v1/me/audit", headers=me.headers).json()["items"],
        what="the follower's read in the audit log",
    )

    r = client.get("/v1/me/export", headers=me.headers)
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    names = set(archive.namelist())
    assert {"vigil-export.json", "account.csv", "profiles.csv", "devices.csv"} <= names
    assert {"readings.csv", "shares.csv", "audit.csv"} <= names
    data = json.loads(archive.read("vigil-export.json"))
    assert [a["email"] for a in data["account"]] == [me.email]
    assert {p["id"] for p in data["profiles"]} == {child["id"], patch["profile_id"]}
    assert {d["id"] for d in data["devices"]} == {cgm["id"], patch["id"]}
    assert len(data["readings"]) == 5
    assert [s["invited_email"] for s in data["shares"]] == [follower.email]
    assert [a["actor_id"] for a in data["audit"]] != []
    readings = list(csv.DictReader(io.StringIO(archive.read("readings.csv").decode())))
    assert len(readings) == 5 and {r["device_id"] for r in readings} == {cgm["id"]}
    assert float(readings[0]["value"]) == 130
    everything = b"".join(archive.read(n) for n in names)
    assert b"password_hash" not in everything and b"$argon2" not in everything
    # The same document as JSON alone; nobody else's data is in it.
    as_json = client.get(
        "/v1/me/export", headers={**me.headers, "Accept": "application/json"}
    ).json()
    assert {d["id"] for d in as_json["devices"]} == {cgm["id"], patch["id"]}
    theirs = client.get(
        "/v1/me/export", headers={**follower.headers, "Accept": "application/json"}
    ).json()
    assert theirs["devices"] == [] and theirs["readings"] == []
    assert [s["profile_id"] for s in theirs["shares"]] == [child["id"]]


def test_delete_my_account_takes_everything_and_followers_lose_access(client, db) -> None:
    me, follower = sign_up(client), sign_up(client)
    device = me.device("glucose")
    assert me.upload(device["id"], series(minutes_ago(20), 4, 300, 100, 0)).status_code == 200
    share_directly(db, device["profile_id"], me.email, follower.email, ["readings"])
    read = f"/v1/devices/{device['id']}/latest"
    assert client.get(read, headers=follower.headers).status_code == 200

    def delete(body: dict):
        return client.request("DELETE", "/v1/me", json=body, headers=me.headers)

    unconfirmed = delete({"password": me.password, "confirm": "yes"})
    assert unconfirmed.status_code == 422
    assert unconfirmed.json()["detail"][0]["loc"] == ["body", "confirm"]
    assert delete({"password": "not my password", "confirm": "DELETE"}).status_code == 403
    done = delete({"password": me.password, "confirm": "DELETE"})
    assert done.status_code == 200, done.text
    assert (done.json()["profiles"], done.json()["devices"]) == (1, 1)

    assert client.get(read, headers=follower.headers).status_code == 404
    assert client.get("/v1/devices", headers=me.headers).status_code == 401
    login = {"username": me.email, "password": me.password}
    assert client.post("/v1/auth/token", data=login).status_code == 401
    left = db.execute(
        "SELECT (SELECT count(*) FROM users WHERE lower(email) = lower(%s)),"
        " (SELECT count(*) FROM devices WHERE id = %s),"
        " (SELECT count(*) FROM readings WHERE device_id = %s),"
        " (SELECT count(*) FROM shares WHERE profile_id = %s)",
        (me.email, device["id"], device["id"], device["profile_id"]),
    ).fetchone()
    assert left == (0, 0, 0, 0)
    # The email can be used again.
    again = client.post(
        "/v1/auth/signup", json={"email": me.email, "password": me.password, "name": "New"}
    )
    assert again.status_code == 202
    assert client.post("/v1/auth/token", data=login).status_code == 200
