"""Device upload tokens: they write their own device's readings and can do nothing else."""

from __future__ import annotations

from tests.e2e.test_sharing import follow
from tests.helpers import Account, minutes_ago, self_profile, series, sign_up


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_an_upload_token_writes_its_own_device_only(account: Account) -> None:
    c = account.client
    cgm, patch = account.device("glucose"), account.device("temperature")
    token = cgm["upload_token"]
    assert token.startswith("vdt_") and token != patch["upload_token"]

    batch = {"readings": series(minutes_ago(15), 3, 300, 110, 0)}
    r = c.post(f"/v1/devices/{cgm['id']}/readings", json=batch, headers=bearer(token))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 3
    latest = c.get(f"/v1/devices/{cgm['id']}/latest", headers=account.headers)
    assert latest.json()["value"] == 110

    temps = {"readings": series(minutes_ago(15), 3, 60, 36.8, 0)}
    r = c.post(f"/v1/devices/{patch['id']}/readings", json=temps, headers=bearer(token))
    assert r.status_code == 403 and "another device" in r.json()["detail"]
    other = sign_up(c).device("glucose")
    r = c.post(f"/v1/devices/{other['id']}/readings", json=batch, headers=bearer(token))
    assert r.status_code == 403

    for path in (
        f"/v1/devices/{cgm['id']}",
        f"/v1/devices/{cgm['id']}/latest",
        f"/v1/devices/{cgm['id']}/readings",
        "/v1/devices",
        "/v1/profiles",
        f"/v1/profiles/{cgm['profile_id']}",
    ):
        r = c.get(path, headers=bearer(token))
        assert r.status_code == 401, f"{path}: {r.status_code}"
    r = c.post(f"/v1/devices/{cgm['id']}/upload-token", headers=bearer(token))
    assert r.status_code == 401
    r = c.post("/v1/devices", json={"kind": "glucose", "serial": "x"}, headers=bearer(token))
    assert r.status_code == 401
    r = c.post(f"/v1/devices/{cgm['id']}/readings", json=batch, headers=bearer("vdt_forged"))
    assert r.status_code == 401


def test_a_new_upload_token_replaces_the_old(account: Account) -> None:
    c = account.client
    cgm = account.device("glucose")
    old = cgm["upload_token"]
    r = c.post(f"/v1/devices/{cgm['id']}/upload-token", headers=account.headers)
    assert r.status_code == 200, r.text
    new = r.json()["upload_token"]
    assert new != old and r.json()["device_id"] == cgm["id"]

    batch = {"readings": series(minutes_ago(10), 2, 300, 140, 0)}
    url = f"/v1/devices/{cgm['id']}/readings"
    assert c.post(url, json=batch, headers=bearer(old)).status_code == 401
    assert c.post(url, json=batch, headers=bearer(new)).status_code == 200

    pid = self_profile(account)
    caregiver, _ = follow(account, pid, ["manage"])
    watcher, _ = follow(account, pid, ["readings"])
    stranger = sign_up(c)
    rotate = f"/v1/devices/{cgm['id']}/upload-token"
    assert c.post(rotate, headers=caregiver.headers).status_code == 200
    assert c.post(rotate, headers=watcher.headers).status_code == 403
    assert c.post(rotate, headers=stranger.headers).status_code == 404
    assert c.post(url, json=batch, headers=bearer(new)).status_code == 401  # replaced again
