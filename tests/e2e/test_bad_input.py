"""Every bad input gets its error, naming what is wrong, and changes nothing stored."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.helpers import Account, minutes_ago, series, sign_up


def count(db, device_id: str) -> int:
    return db.execute(
        "SELECT count(*) FROM readings WHERE device_id = %s", (device_id,)
    ).fetchone()[0]


@pytest.fixture
def seeded(account: Account, db) -> dict:
    """A glucose device with 6 stored readings."""
    device = account.device("glucose")
    assert account.upload(device["id"], series(minutes_ago(40), 6, 300, 110, 0)).status_code == 200
    assert count(db, device["id"]) == 6
    return device


def _loc(response) -> list:
    return [tuple(item["loc"]) for item in response.json()["detail"]]


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("glucose", 19.9),
        ("glucose", 600.5),
        ("glucose", -5),
        ("temperature", 24.9),
        ("temperature", 45.1),
    ],
)
def test_value_outside_the_physical_range_rejects_the_whole_batch(
    account: Account, db, kind: str, value: float
) -> None:
    device = account.device(kind)
    base = 100.0 if kind == "glucose" else 36.5
    batch = series(minutes_ago(20), 4, 300, base, 0)
    batch[2]["value"] = value
    r = account.upload(device["id"], batch)
    assert r.status_code == 422
    assert _loc(r) == [("body", "readings", 2, "value")]
    assert "outside" in r.json()["detail"][0]["msg"]
    assert count(db, device["id"]) == 0  # the three good readings were not stored either


def test_range_bounds_are_inclusive(account: Account, db) -> None:
    device = account.device("glucose")
    batch = series(minutes_ago(20), 2, 300, 100, 0)
    batch[0]["value"], batch[1]["value"] = 20, 600
    assert account.upload(device["id"], batch).json() == {"accepted": 2, "duplicates": 0}


def test_timestamp_more_than_five_minutes_ahead_is_rejected(account: Account, seeded, db) -> None:
    future = datetime.now(UTC) + timedelta(minutes=10)
    soon = datetime.now(UTC) + timedelta(minutes=2)
    r = account.upload(
        seeded["id"],
        [{"ts": soon.isoformat(), "value": 100}, {"ts": future.isoformat(), "value": 100}],
    )
    assert r.status_code == 422
    assert _loc(r) == [("body", "readings", 1, "ts")]
    assert "future" in r.json()["detail"][0]["msg"]
    assert count(db, seeded["id"]) == 6


@pytest.mark.parametrize(
    "ts", ["yesterday", "2026-13-01T00:00:00+00:00", "2026-11-24T07:00:00", ""]
)
def test_malformed_or_offsetless_timestamp_names_the_field(
    account: Account, seeded, db, ts: str
) -> None:
    good = series(minutes_ago(5), 1, 60, 100, 0)[0]
    r = account.upload(seeded["id"], [good, {"ts": ts, "value": 100}])
    assert r.status_code == 422
    assert ("body", "readings", 1, "ts") in _loc(r)
    assert count(db, seeded["id"]) == 6


@pytest.mark.parametrize("value", ["NaN", "high", None])
def test_non_numeric_value_names_the_field(account: Account, seeded, db, value) -> None:
    r = account.client.post(
        f"/v1/devices/{seeded['id']}/readings",
        content='{{"readings": [{{"ts": "{}", "value": {}}}]}}'.format(
            minutes_ago(1).isoformat(),
            "NaN" if value == "NaN" else f'"{value}"' if value else "null",
        ),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 422
    assert count(db, seeded["id"]) == 6


def test_oversized_batch_is_413(account: Account, seeded, db) -> None:
    batch = series(minutes_ago(20_000), 10_001, 60, 100, 0)
    r = account.upload(seeded["id"], batch)
    assert r.status_code == 413
    assert "10000" in r.text.replace(",", "")
    assert count(db, seeded["id"]) == 6


def test_largest_allowed_batch_is_accepted(account: Account, db) -> None:
    device = account.device("temperature")
    r = account.upload(device["id"], series(minutes_ago(10_005), 10_000, 60, 36.6, 0))
    assert r.json() == {"accepted": 10_000, "duplicates": 0}


def test_unknown_device_is_404(account: Account) -> None:
    r = account.upload(str(uuid.uuid4()), series(minutes_ago(5), 1, 60, 100, 0))
    assert r.status_code == 404
    r = account.client.get(f"/v1/devices/{uuid.uuid4()}/latest", headers=account.headers)
    assert r.status_code == 404


def test_someone_elses_device_is_404_for_writes_and_reads(account: Account, seeded, db) -> None:
    stranger = sign_up(account.client)
    url = f"/v1/devices/{seeded['id']}"
    assert stranger.upload(seeded["id"], series(minutes_ago(3), 1, 60, 300, 0)).status_code == 404
    for path in ("", "/readings", "/latest"):
        assert stranger.client.get(url + path, headers=stranger.headers).status_code == 404
    assert seeded["id"] not in {
        d["id"] for d in stranger.client.get("/v1/devices", headers=stranger.headers).json()
    }
    assert count(db, seeded["id"]) == 6


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer not-a-jwt", "Basic Zm9vOmJhcg==", "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."],
)
def test_missing_or_invalid_token_is_401(account: Account, seeded, db, authorization) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = account.client.post(
        f"/v1/devices/{seeded['id']}/readings",
        json={"readings": series(minutes_ago(2), 1, 60, 100, 0)},
        headers=headers,
    )
    assert r.status_code == 401
    assert r.headers.get("www-authenticate") == "Bearer"
    assert account.client.get("/v1/devices", headers=headers).status_code == 401
    assert count(db, seeded["id"]) == 6


def test_device_registration_validates_and_refuses_a_second_serial(account: Account) -> None:
    bad = account.client.post(
        "/v1/devices", json={"kind": "blood-pressure", "serial": "x"}, headers=account.headers
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "kind"]
    bad = account.client.post(
        "/v1/devices",
        json={"kind": "glucose", "serial": "x", "interval_s": 0},
        headers=account.headers,
    )
    assert bad.status_code == 422 and bad.json()["detail"][0]["loc"] == ["body", "interval_s"]
    first = account.client.post(
        "/v1/devices", json={"kind": "glucose", "serial": "dup-1"}, headers=account.headers
    )
    assert first.status_code == 201
    again = account.client.post(
        "/v1/devices", json={"kind": "glucose", "serial": "dup-1"}, headers=account.headers
    )
    assert again.status_code == 409


def test_reversed_time_window_is_422(account: Account, seeded) -> None:
    r = account.client.get(
        f"/v1/devices/{seeded['id']}/readings",
        params={"start": minutes_ago(1).isoformat(), "end": minutes_ago(10).isoformat()},
        headers=account.headers,
    )
    assert r.status_code == 422
