"""Administration: `vigil admin create`, admin-only routes, disabling users, moving devices,
reading the audit log."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from typer.testing import CliRunner
from websockets.sync.client import connect

from cluster.cli import app as cli
from tests.e2e.test_alerts import FALL, alerts_of, one_by_one
from tests.e2e.test_stream import alerts_in, collect, token, ws_url
from tests.helpers import Account, minutes_ago, self_profile, series, sign_up, wait_until

ADMIN_PASSWORD = "operator passphrase 42"


@pytest.fixture(scope="module")
def admin(stack, database_url) -> Account:
    email = f"admin-{uuid.uuid4().hex[:8]}@example.com"
    args = ["admin", "create", "--email", email, "--name", "Operator"]
    env = {"VIGIL_DATABASE_URL": database_url}
    weak = CliRunner().invoke(cli, [*args, "--password", "password1234"], env=env)
    assert weak.exit_code == 2 and "common" in weak.output
    made = CliRunner().invoke(cli, args, input=f"{ADMIN_PASSWORD}\n{ADMIN_PASSWORD}\n", env=env)
    assert made.exit_code == 0, made.output
    assert "created admin" in made.output
    client = httpx.Client(base_url=stack.url, timeout=60)
    r = client.post("/v1/auth/token", data={"username": email, "password": ADMIN_PASSWORD})
    assert r.status_code == 200, r.text
    return Account(
        client, email, ADMIN_PASSWORD, {"Authorization": f"Bearer {r.json()['access_token']}"}
    )


def test_admin_routes_refuse_everyone_else(client, admin) -> None:
    user = sign_up(client)
    for path in ("/v1/admin/users", "/v1/admin/profiles", "/v1/admin/devices", "/v1/admin/audit"):
        assert client.get(path, headers=user.headers).status_code == 403, path
        assert client.get(path).status_code == 401, path
        assert client.get(path, headers=admin.headers).status_code == 200, path
    r = client.post(f"/v1/admin/users/{uuid.uuid4()}/disable", headers=user.headers)
    assert r.status_code == 403


def test_promoting_an_existing_user(client, database_url) -> None:
    user = sign_up(client)
    out = CliRunner().invoke(
        cli,
        ["admin", "create", "--email", user.email, "--name", "X", "--password", "whatever it is 1"],
        env={"VIGIL_DATABASE_URL": database_url},
    )
    assert out.exit_code == 0 and "existing user" in out.output
    assert client.get("/v1/admin/users", headers=user.headers).status_code == 200
    # The password did not change.
    login = {"username": user.email, "password": user.password}
    assert client.post("/v1/auth/token", data=login).status_code == 200


def test_search_users_profiles_and_devices(client, admin) -> None:
    user = sign_up(client)
    device = user.device("glucose", model="Dexcom G7")
    c, h = client, admin.headers
    found = c.get("/v1/admin/users", params={"q": user.email.upper()[:16]}, headers=h).json()
    assert [u["email"] for u in found] == [user.email]
    assert (found[0]["profile_count"], found[0]["device_count"]) == (1, 1)
    detail = c.get(f"/v1/admin/users/{found[0]['id']}", headers=h).json()
    assert [d["id"] for d in detail["devices"]] == [device["id"]]
    assert [p["id"] for p in detail["profiles"]] == [device["profile_id"]]
    by_serial = c.get("/v1/admin/devices", params={"q": device["serial"]}, headers=h).json()
    assert [d["id"] for d in by_serial] == [device["id"]]
    profiles = c.get("/v1/admin/profiles", params={"q": user.email}, headers=h).json()
    assert [p["id"] for p in profiles] == [device["profile_id"]]
    assert c.get(f"/v1/admin/users/{uuid.uuid4()}", headers=h).status_code == 404


def test_a_disabled_users_tokens_stop_working_at_once(client, admin) -> None:
    user = sign_up(client)
    device = user.device("glucose")
    user_id = client.get("/v1/admin/users", params={"q": user.email}, headers=admin.headers)
    user_id = user_id.json()[0]["id"]
    r = client.post(f"/v1/admin/users/{user_id}/disable", headers=admin.headers)
    assert r.status_code == 200 and r.json()["disabled_at"] is not None
    assert client.get("/v1/devices", headers=user.headers).status_code == 401
    assert client.get(f"/v1/devices/{device['id']}", headers=user.headers).status_code in (
        401,
        404,
    )
    login = {"username": user.email, "password": user.password}
    assert client.post("/v1/auth/token", data=login).status_code == 401
    r = client.post(f"/v1/admin/users/{user_id}/enable", headers=admin.headers)
    assert r.status_code == 200 and r.json()["disabled_at"] is None
    assert client.post("/v1/auth/token", data=login).status_code == 200
    own = client.get("/v1/admin/users", params={"q": admin.email}, headers=admin.headers).json()
    r = client.post(f"/v1/admin/users/{own[0]['id']}/disable", headers=admin.headers)
    assert r.status_code == 409


def test_move_a_device_to_another_profile(client, admin) -> None:
    old, new = sign_up(client), sign_up(client)
    device = old.device("glucose")
    assert old.upload(device["id"], series(minutes_ago(15), 3, 300, 110, 0)).status_code == 200
    target = client.get("/v1/profiles", headers=new.headers).json()[0]["id"]
    r = client.post(
        f"/v1/admin/devices/{device['id']}/move", json={"profile_id": target}, headers=admin.headers
    )
    assert r.status_code == 200 and r.json()["profile_id"] == target
    assert client.get(f"/v1/devices/{device['id']}", headers=old.headers).status_code == 404
    readings = client.get(f"/v1/devices/{device['id']}/readings", headers=new.headers)
    assert readings.status_code == 200 and len(readings.json()) == 3
    # The device's actor was reloaded: alerts of new readings belong to the new profile.
    low = series(minutes_ago(4), 3, 60, 48, 0)
    assert new.upload(device["id"], low).status_code == 200

    def new_owners_alerts() -> list[dict]:
        return client.get("/v1/alerts", headers=new.headers).json()

    alerts = wait_until(new_owners_alerts, what="an urgent low alert for the new profile")
    assert {a["profile_id"] for a in alerts} == {target}
    assert client.get("/v1/alerts", headers=old.headers).json() == []
    missing = client.post(
        f"/v1/admin/devices/{device['id']}/move",
        json={"profile_id": str(uuid.uuid4())},
        headers=admin.headers,
    )
    assert missing.status_code == 404 and "profile" in missing.json()["detail"]


def test_admins_read_the_whole_audit_log(client, admin) -> None:
    user = sign_up(client)
    device = user.device("temperature")
    client.get(f"/v1/devices/{device['id']}", headers=user.headers)

    def entries() -> list[dict]:
        r = client.get(
            "/v1/admin/audit", params={"profile_id": device["profile_id"]}, headers=admin.headers
        )
        return r.json()["items"]

    (entry,) = wait_until(entries, what="the audit entry")
    assert (entry["actor_email"], entry["device_id"]) == (user.email, device["id"])


def test_a_nul_in_the_search_is_a_422(client, admin) -> None:
    r = client.get("/v1/admin/users", params={"q": "a\x00"}, headers=admin.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "q"]


def test_alert_latency_is_measured_from_the_timestamps_alerts_carry(
    client, admin, account: Account, stack
) -> None:
    since = datetime.now(UTC).isoformat()
    pid = self_profile(account)
    device = account.device("glucose")
    with connect(ws_url(stack, token=token(account), profile_id=pid)) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        one_by_one(account, device["id"], minutes_ago(12), 30, FALL)
        collect(ws, lambda ms: ("urgent_low", "fired") in alerts_in(ms))
    mine = alerts_of(account, pid)
    assert len(mine) >= 2

    def measured() -> dict | None:
        r = client.get("/v1/admin/alert-latency", params={"start": since}, headers=admin.headers)
        assert r.status_code == 200, r.text
        body = r.json()
        stream = [c for c in body["delivered"] if c["channel"] == "stream"]
        return body if stream and stream[0]["count"] >= len(mine) else None

    body = wait_until(measured, what="stream deliveries of the alerts recorded")
    fired = body["fired"]
    assert fired["count"] >= len(mine)  # other tests' devices may alert meanwhile
    assert fired["max_ms"] >= max(a["latency_ms"] for a in mine)
    assert 0 <= fired["p50_ms"] <= fired["p95_ms"] <= fired["p99_ms"] <= fired["max_ms"]
    stream = next(c for c in body["delivered"] if c["channel"] == "stream")
    assert stream["p50_ms"] >= 0 and stream["p50_ms"] <= stream["max_ms"]

    r = client.get(
        "/v1/admin/alert-latency",
        params={"start": since, "end": since},
        headers=admin.headers,
    )
    assert r.status_code == 422
    user = sign_up(client)
    assert client.get("/v1/admin/alert-latency", headers=user.headers).status_code == 403
