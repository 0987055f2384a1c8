"""Finding 10: strict input. A misspelt field, a coerced type, a repeated JSON key, an
unbounded list, a lone UTF-16 surrogate or JSON nested too deeply is a 422 naming the
field (or an error message on a WebSocket), and nothing of it is stored."""

from __future__ import annotations

import json
import uuid

import httpx
import pytest
from websockets.sync.client import connect

from tests.helpers import Account, minutes_ago, self_profile, series

DEEP = "[" * 100_000 + "]" * 100_000


def locs(r: httpx.Response) -> list[list]:
    assert r.status_code == 422, r.text
    return [item["loc"] for item in r.json()["detail"]]


def raw_post(account: Account, url: str, text: str, **headers: str) -> httpx.Response:
    """A body sent exactly as written (``\\ud800`` escapes stay lone surrogates)."""
    h = {**account.headers, "content-type": "application/json", **headers}
    return account.client.post(url, content=text.encode(), headers=h)


def stored(db, device_id: str) -> int:
    sql = "SELECT count(*) FROM readings WHERE device_id = %s"
    return db.execute(sql, (device_id,)).fetchone()[0]


# -- misspelt fields ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"glucose": [{"kind": "high", "threshhold": 300}]}, ["body", "glucose", 0, "threshhold"]),
        ({"glucose": [{"kind": "high", "enable": False}]}, ["body", "glucose", 0, "enable"]),
        ({"glucos": [{"kind": "high", "threshold": 300}]}, ["body", "glucos"]),
    ],
)
def test_a_misspelt_alert_setting_is_a_422_and_keeps_nothing(
    account: Account, body: dict, loc: list
) -> None:
    url = f"/v1/profiles/{self_profile(account)}/alert-settings"
    assert locs(account.client.put(url, json=body, headers=account.headers)) == [loc]
    assert account.client.get(url, headers=account.headers).json()["version"] == 0


def test_profile_id_in_camel_case_is_refused_not_ignored(account: Account) -> None:
    other = account.client.post("/v1/profiles", json={"name": "Kid"}, headers=account.headers)
    body = {"kind": "glucose", "serial": uuid.uuid4().hex[:10], "profileId": other.json()["id"]}
    r = account.client.post("/v1/devices", json=body, headers=account.headers)
    assert locs(r) == [["body", "profileId"]]
    assert account.client.get("/v1/devices", headers=account.headers).json() == []


def test_expires_in_hour_on_an_invitation_is_refused(account: Account) -> None:
    body = {"email": "nan@example.com", "scopes": ["readings"], "expires_in_hour": 1}
    url = f"/v1/profiles/{self_profile(account)}/shares"
    assert locs(account.client.post(url, json=body, headers=account.headers)) == [
        ["body", "expires_in_hour"]
    ]


# -- no coercion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reading", "field"),
    [({"value": "120"}, "value"), ({"ts": 1_790_000_000}, "ts"), ({"ts": "1790000000"}, "ts")],
)
def test_readings_are_not_coerced(account: Account, db, reading: dict, field: str) -> None:
    device = account.device("glucose")
    good = {"ts": minutes_ago(5).isoformat(), "value": 120.0}
    assert locs(account.upload(device["id"], [{**good, **reading}])) == [
        ["body", "readings", 0, field]
    ]
    assert stored(db, device["id"]) == 0


def test_a_boolean_is_not_an_interval(account: Account) -> None:
    body = {"kind": "glucose", "serial": uuid.uuid4().hex[:10], "interval_s": True}
    r = account.client.post("/v1/devices", json=body, headers=account.headers)
    assert locs(r) == [["body", "interval_s"]]


def test_documented_string_forms_are_still_accepted(account: Account) -> None:
    """Strict mode must not refuse what the API documents: ISO times, UUID strings, enums."""
    kid = account.client.post("/v1/profiles", json={"name": "Kid"}, headers=account.headers)
    body = {"kind": "temperature", "serial": uuid.uuid4().hex[:10], "profile_id": kid.json()["id"]}
    device = account.client.post("/v1/devices", json=body, headers=account.headers)
    assert device.status_code == 201, device.text
    batch = series(minutes_ago(10), 2, 60, 36.6, 0)
    assert account.upload(device.json()["id"], batch).json()["accepted"] == 2
    url = f"/v1/profiles/{self_profile(account)}/alert-settings"
    rules = {
        "glucose": [{"kind": "low", "threshold": 65, "quiet": [{"start": "22:00", "end": "07:00"}]}]
    }
    assert account.client.put(url, json=rules, headers=account.headers).status_code == 200
    prefs = {"rules": ["urgent_low", "low"], "channels": ["stream"]}
    url = f"/v1/profiles/{self_profile(account)}/notification-preferences"
    r = account.client.put(url, json=prefs, headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.json()["rules"] == ["urgent_low", "low"]


# -- duplicate keys -------------------------------------------------------------------------


def test_a_repeated_key_is_a_422_naming_it(account: Account, db) -> None:
    device = account.device("glucose")
    ts = minutes_ago(5).isoformat()
    text = '{"readings": [{"ts": "' + ts + '", "value": 100, "value": 500}]}'
    r = raw_post(account, f"/v1/devices/{device['id']}/readings", text)
    assert locs(r) == [["body", "value"]]
    assert "duplicate" in r.json()["detail"][0]["msg"]
    assert stored(db, device["id"]) == 0


def test_deep_json_in_a_body_is_a_422_not_a_crash(account: Account, db) -> None:
    device = account.device("glucose")
    r = raw_post(account, f"/v1/devices/{device['id']}/readings", DEEP)
    assert r.status_code == 422 and "nested too deeply" in r.json()["detail"][0]["msg"]
    assert account.upload(device["id"], series(minutes_ago(5), 1, 60, 100, 0)).status_code == 200


# -- bounded lists --------------------------------------------------------------------------


def test_a_hundred_thousand_quiet_periods_are_refused(account: Account) -> None:
    quiet = [{"start": "22:00", "end": "07:00"}] * 100_000
    profile = self_profile(account)
    settings = account.client.put(
        f"/v1/profiles/{profile}/alert-settings",
        json={"glucose": [{"kind": "high", "quiet": quiet}]},
        headers=account.headers,
    )
    assert locs(settings) == [["body", "glucose", 0, "quiet"]]
    prefs = account.client.put(
        f"/v1/profiles/{profile}/notification-preferences",
        json={"quiet": quiet},
        headers=account.headers,
    )
    assert locs(prefs) == [["body", "quiet"]]


def test_a_million_weekdays_are_refused(account: Account) -> None:
    period = {"start": "22:00", "end": "07:00", "weekdays": [0] * 1_000_000}
    r = account.client.put(
        f"/v1/profiles/{self_profile(account)}/alert-settings",
        json={"glucose": [{"kind": "high", "quiet": [period]}]},
        headers=account.headers,
    )
    assert locs(r) == [["body", "glucose", 0, "quiet", 0, "weekdays"]]


# -- lone surrogates ------------------------------------------------------------------------

LONE = "\\ud800"  # as JSON escapes it: valid JSON, not valid Unicode


@pytest.mark.parametrize(
    ("template", "loc"),
    [
        ('{"kind": "note", "ts": "%s", "note": "a %s"}', ["body", "note", "note"]),
        (
            '{"kind": "note", "ts": "%s", "note": "n", "idempotency_key": "k%s"}',
            ["body", "note", "idempotency_key"],
        ),
        (
            '{"kind": "meal", "ts": "%s", "details": {"description": "b%s"}}',
            ["body", "meal", "details", "description"],
        ),
    ],
)
def test_a_lone_surrogate_in_event_text_is_a_422(account: Account, template: str, loc) -> None:
    url = f"/v1/profiles/{self_profile(account)}/events"
    r = raw_post(account, url, template % (minutes_ago(2).isoformat(), LONE))
    assert locs(r) == [loc]
    assert account.client.get(url, headers=account.headers).json() == []


def test_an_idempotency_key_header_that_is_not_ascii_is_a_422(account: Account) -> None:
    url = f"/v1/profiles/{self_profile(account)}/events"
    body = {"kind": "note", "ts": minutes_ago(2).isoformat(), "note": "n"}
    headers = [
        *account.headers.items(),
        ("Idempotency-Key", "k\ud800".encode("utf-8", "surrogatepass")),
    ]
    r = account.client.post(url, json=body, headers=headers)
    assert locs(r) == [["header", "Idempotency-Key"]]


def test_a_lone_surrogate_in_a_report_link_label_is_a_422(account: Account) -> None:
    url = f"/v1/profiles/{self_profile(account)}/report-links"
    assert locs(raw_post(account, url, '{"label": "Dr ' + LONE + '"}')) == [["body", "label"]]
    assert account.client.get(url, headers=account.headers).json() == []


# -- deeply nested JSON on the WebSockets ---------------------------------------------------


def test_deep_json_on_the_live_stream_is_answered_and_the_stream_goes_on(
    account: Account, stack
) -> None:
    token = account.headers["Authorization"].removeprefix("Bearer ")
    url = stack.url.replace("http://", "ws://") + f"/v1/stream?token={token}"
    with connect(url, max_size=None) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "subscribed"
        ws.send(DEEP)
        error = json.loads(ws.recv(timeout=30))
        assert error["type"] == "error" and "nested too deeply" in error["detail"]
        ws.send('{"type": "subscribe", "type": "unsubscribe"}')
        assert "duplicate key 'type'" in json.loads(ws.recv(timeout=30))["detail"]
        ws.send(json.dumps({"type": "subscribe", "profile_ids": [self_profile(account)]}))
        answer = json.loads(ws.recv(timeout=30))  # the reader is still alive
        assert answer["type"] == "subscribed" and len(answer["profiles"]) == 1


def test_deep_json_on_the_ingest_socket_is_answered_and_the_stream_goes_on(
    account: Account, stack, db
) -> None:
    device = account.device("glucose")
    base = stack.url.replace("http://", "ws://") + f"/v1/devices/{device['id']}/readings/stream"
    with connect(f"{base}?token={device['upload_token']}", max_size=None) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        ws.send(DEEP)
        error = json.loads(ws.recv(timeout=30))
        assert error["status"] == 422 and "nested too deeply" in error["detail"][0]["msg"]
        ws.send('{"seq": 1, "readings": [], "readings": []}')
        assert json.loads(ws.recv(timeout=30))["detail"][0]["loc"] == ["readings"]
        batch = {"seq": 2, "readings": series(minutes_ago(5), 1, 60, 100, 0)}
        ws.send(json.dumps(batch))
        assert json.loads(ws.recv(timeout=30)) == {
            "type": "ack",
            "seq": 2,
            "accepted": 1,
            "duplicates": 0,
        }
    # as the first (authentication) message: refused with a reason, not a crash
    with connect(base, max_size=None) as ws:
        ws.send(DEEP)
        refusal = json.loads(ws.recv(timeout=30))
        assert refusal["status"] == 401
    assert stored(db, device["id"]) == 1


@pytest.mark.parametrize(
    ("url", "template", "loc"),
    [
        (
            "/v1/auth/signup",
            '{"email": "s@example.com", "password": "long enough%s", "name": "S"}',
            "password",
        ),
        ("/v1/auth/logout", '{"refresh_token": "r%s"}', "refresh_token"),
        ("/v1/shares/accept", '{"code": "c%s"}', "code"),
        (
            "/v1/auth/password-reset/confirm",
            '{"token": "%s0123456789abcdef", "new_password": "long enough pass"}',
            "token",
        ),
    ],
)
def test_a_lone_surrogate_in_a_secret_is_a_422(
    account: Account, url: str, template: str, loc: str
) -> None:
    assert locs(raw_post(account, url, template.replace("%s", LONE))) == [["body", loc]]
