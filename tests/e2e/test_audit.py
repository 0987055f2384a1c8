"""The audit log: reads of health data are recorded; people see who viewed their data;
the log cannot be changed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import psycopg
import pytest

from tests.helpers import minutes_ago, series, share_directly, sign_up, wait_until


def _audit(account, **params) -> dict:
    r = account.client.get("/v1/me/audit", params=params, headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_reads_are_recorded_and_shown_to_the_owner(client, db) -> None:
    owner, follower, stranger = sign_up(client), sign_up(client), sign_up(client)
    device = owner.device("glucose")
    assert owner.upload(device["id"], series(minutes_ago(20), 4, 300, 120, 0)).status_code == 200
    share_directly(db, device["profile_id"], owner.email, follower.email, ["readings"])
    r = client.get(
        f"/v1/devices/{device['id']}/readings",
        headers={**follower.headers, "User-Agent": "GrandmaPhone/2.1"},
    )
    assert r.status_code == 200 and len(r.json()) == 4

    def followers_read() -> list[dict]:
        return [e for e in _audit(owner)["items"] if e["actor_email"] == follower.email]

    (entry,) = wait_until(followers_read, what="the follower's read in the audit log")
    assert entry["action"] == "GET /v1/devices/{device_id}/readings"
    assert (entry["device_id"], entry["profile_id"]) == (device["id"], device["profile_id"])
    assert (entry["client_addr"], entry["user_agent"]) == ("127.0.0.1", "GrandmaPhone/2.1")
    # The upload (a write) was not recorded; a stranger sees nothing of it.
    assert not [e for e in _audit(owner)["items"] if e["action"].startswith("POST")]
    assert _audit(stranger)["items"] == []
    # A refused read (no relation) is not an access and is not recorded.
    r = client.get(f"/v1/devices/{device['id']}/readings", headers=stranger.headers)
    assert r.status_code == 404


def test_audit_pages_and_filters_by_time(client) -> None:
    owner = sign_up(client)
    device = owner.device("temperature")
    child = client.post("/v1/profiles", json={"name": "Kid"}, headers=owner.headers).json()
    client.get(f"/v1/devices/{device['id']}", headers=owner.headers)
    client.get(f"/v1/profiles/{child['id']}", headers=owner.headers)
    client.get(f"/v1/devices/{device['id']}/readings", headers=owner.headers)
    wait_until(lambda: len(_audit(owner)["items"]) == 3, what="three audit entries")
    first = _audit(owner, limit=2)
    assert len(first["items"]) == 2 and first["next_before"] == first["items"][-1]["id"]
    second = _audit(owner, limit=2, before=first["next_before"])
    assert len(second["items"]) == 1 and second["next_before"] is None
    ids = [e["id"] for e in first["items"] + second["items"]]
    assert ids == sorted(ids, reverse=True)
    assert {e["profile_id"] for e in first["items"] + second["items"]} == {
        device["profile_id"],
        child["id"],
    }
    later = (datetime.now(UTC) + timedelta(minutes=5)).isoformat()
    assert _audit(owner, start=later)["items"] == []
    assert len(_audit(owner, end=later)["items"]) == 3
    bad = client.get("/v1/me/audit", params={"start": later, "end": later}, headers=owner.headers)
    assert bad.status_code == 422


def test_the_audit_log_is_append_only(client, db) -> None:
    owner = sign_up(client)
    device = owner.device("glucose")
    client.get(f"/v1/devices/{device['id']}", headers=owner.headers)
    wait_until(lambda: _audit(owner)["items"], what="an audit entry")
    for statement in (
        "UPDATE audit_log SET action = 'x' WHERE profile_id = %s",
        "DELETE FROM audit_log WHERE profile_id = %s",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            db.execute(statement, (device["profile_id"],))
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        db.execute("TRUNCATE audit_log")
    assert len(_audit(owner)["items"]) == 1


def test_every_latest_read_is_recorded_with_the_read_itself(client, db) -> None:
    owner, follower, limited = sign_up(client), sign_up(client), sign_up(client)
    device = owner.device("glucose")
    assert owner.upload(device["id"], series(minutes_ago(10), 2, 300, 110, 0)).status_code == 200
    share_directly(db, device["profile_id"], owner.email, follower.email, ["readings"])
    share_directly(db, device["profile_id"], owner.email, limited.email, ["alerts"])
    latest = f"/v1/devices/{device['id']}/latest"
    for _ in range(3):
        r = client.get(latest, headers=follower.headers)
        assert r.status_code == 200 and r.json()["value"] == 110
    r = client.get(latest, headers=limited.headers)
    assert r.status_code == 403 and "'readings'" in r.json()["detail"]
    # Written by the statement that read: there as soon as the answer is, none dropped.
    reads = db.execute(
        "SELECT a.action, u.email FROM audit_log a JOIN users u ON u.id = a.actor_id"
        " WHERE a.device_id = %s AND a.action LIKE 'GET %%latest'",
        (device["id"],),
    ).fetchall()
    assert reads == [("GET /v1/devices/{device_id}/latest", follower.email)] * 3


def test_reads_that_find_nothing_are_recorded_and_refused_reads_are_not(client, db) -> None:
    owner, follower, limited, stranger = (sign_up(client) for _ in range(4))
    device = owner.device("glucose")  # no readings yet
    share_directly(db, device["profile_id"], owner.email, follower.email, ["readings"])
    share_directly(db, device["profile_id"], owner.email, limited.email, ["alerts"])
    base = f"/v1/devices/{device['id']}"
    r = client.get(f"{base}/latest", headers=follower.headers)
    assert r.status_code == 404 and r.json()["detail"] == "no readings yet"
    r = client.get(f"{base}/readings", headers=follower.headers)
    assert r.status_code == 200 and r.json() == []
    assert client.get(f"{base}/latest", headers=limited.headers).status_code == 403
    assert client.get(f"{base}/readings", headers=stranger.headers).status_code == 404
    # The reads that found nothing are accesses all the same; the refused ones are not.
    reads = db.execute(
        "SELECT a.action, u.email FROM audit_log a JOIN users u ON u.id = a.actor_id"
        " WHERE a.device_id = %s ORDER BY a.id",
        (device["id"],),
    ).fetchall()
    assert reads == [
        ("GET /v1/devices/{device_id}/latest", follower.email),
        ("GET /v1/devices/{device_id}/readings", follower.email),
    ]
