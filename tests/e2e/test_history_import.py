"""History import over HTTP (each format's sample, idempotent, no alerts, nothing on a bad
file) and the Open mHealth export."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import Account, self_profile, wait_until

DATA = Path(__file__).parent.parent / "data" / "history"


def upload(account: Account, device_id: str, name: str, content: bytes | None = None):
    content = (DATA / name).read_bytes() if content is None else content
    return account.client.post(
        f"/v1/devices/{device_id}/import",
        files={"file": (name, content, "application/octet-stream")},
        headers=account.headers,
    )


def finished(account: Account, device_id: str, started: dict) -> dict:
    url = f"/v1/devices/{device_id}/imports/{started['id']}"

    def done():
        body = account.client.get(url, headers=account.headers).json()
        return body if body["state"] != "running" else None

    return wait_until(done, what="import to finish")


@pytest.mark.parametrize(
    ("name", "fmt", "stored", "skipped"),
    [
        ("clarity.csv", "dexcom-clarity", 21, 3),
        ("libreview.csv", "libreview", 14, 0),
        ("nightscout-entries.json", "nightscout", 12, 1),
        ("tidepool.json", "tidepool", 12, 0),
    ],
)
def test_each_format_imports_once_and_a_second_import_is_all_duplicates(
    account: Account, name: str, fmt: str, stored: int, skipped: int
) -> None:
    device = account.device("glucose")
    r = upload(account, device["id"], name)
    assert r.status_code == 202, r.text
    assert r.json()["format"] == fmt and r.json()["total"] == stored
    first = finished(account, device["id"], r.json())
    assert (first["state"], first["processed"], first["accepted"], first["duplicates"]) == (
        "done",
        stored,
        stored,
        0,
    )
    assert len(first["skipped"]) == skipped and all(s["line"] > 0 for s in first["skipped"])
    got = account.client.get(
        f"/v1/devices/{device['id']}/readings", params={"limit": 1000}, headers=account.headers
    ).json()
    assert len(got) == stored

    again = finished(account, device["id"], upload(account, device["id"], name).json())
    assert (again["accepted"], again["duplicates"]) == (0, stored)
    assert len(got) == len(
        account.client.get(
            f"/v1/devices/{device['id']}/readings", params={"limit": 1000}, headers=account.headers
        ).json()
    )


def test_imported_lows_are_history_no_alert_fires(account: Account) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    done = finished(account, device["id"], upload(account, device["id"], "clarity.csv").json())
    assert done["accepted"] == 21
    lows = account.client.get(
        f"/v1/devices/{device['id']}/readings", headers=account.headers
    ).json()
    assert min(r["value"] for r in lows) < 55  # the file has urgent lows ...
    r = account.client.get("/v1/alerts", params={"profile_id": pid}, headers=account.headers)
    assert r.status_code == 200 and r.json() == []  # ... and no alert fired for them


def test_a_file_that_cannot_be_read_stores_nothing(account: Account) -> None:
    device = account.device("glucose")
    good = (DATA / "clarity.csv").read_text().splitlines()
    good[20] = good[20].replace("2026-11-20T", "20/11/2026 ")  # one bad timestamp, line 21
    r = upload(account, device["id"], "clarity.csv", "\n".join(good).encode())
    assert r.status_code == 422 and "line 21" in r.json()["detail"], r.text
    r = upload(account, device["id"], "x.csv", b"date,value\n2026-11-20,100\n")
    assert r.status_code == 422 and "unrecognised" in r.json()["detail"]
    got = account.client.get(f"/v1/devices/{device['id']}/readings", headers=account.headers)
    assert got.json() == []
    patch = account.device("temperature")
    assert upload(account, patch["id"], "clarity.csv").status_code == 409


def test_open_mhealth_export(account: Account) -> None:
    device = account.device("glucose")
    finished(account, device["id"], upload(account, device["id"], "tidepool.json").json())
    url = f"/v1/devices/{device['id']}/export/openmhealth"
    points = account.client.get(url, headers=account.headers).json()
    assert len(points) == 12
    first = points[0]
    assert first["header"]["schema_id"] == {
        "namespace": "omh",
        "name": "blood-glucose",
        "version": "4.0",
    }
    assert first["body"]["blood_glucose"] == {"value": round(6.5 * 18.016, 1), "unit": "mg/dL"}
    assert first["body"]["effective_time_frame"] == {"date_time": "2026-11-23T12:00:00Z"}
    assert account.client.get(url, headers=account.headers).json() == points  # stable ids
