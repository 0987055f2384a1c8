"""A profile's Nightscout v1 site, driven as xDrip+ / AndroidAPS upload and as Nightguard /
xDrip+ follower / watch faces read: the requests below are shaped as those apps send them."""

from __future__ import annotations

import hashlib
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx

from tests.helpers import Account, minutes_ago, self_profile, sign_up, wait_until


def turn_on(account: Account, profile_id: str, **body) -> dict:
    r = account.client.put(
        f"/v1/profiles/{profile_id}/nightscout", json=body or None, headers=account.headers
    )
    assert r.status_code == 200, r.text
    return r.json()


def site_path(site: dict) -> str:
    """The base URL's path (the tests' client has the origin)."""
    return urlsplit(site["base_url"]).path


def sha1(secret: str) -> str:
    return hashlib.sha1(secret.encode()).hexdigest()


def uploader_headers(site: dict) -> dict[str, str]:
    """xDrip+ 'REST API upload' and AndroidAPS send the SHA-1 hex of the secret."""
    return {"api-secret": sha1(site["api_secret"]), "Content-Type": "application/json"}


def ms(ts: datetime) -> int:
    return int(ts.timestamp() * 1000)


def xdrip_sgv(ts: datetime, value: int, direction: str = "Flat") -> dict:
    """An entry as xDrip+ uploads it (with its own raw fields Vigil does not use)."""
    return {
        "device": "xDrip-DexcomG6",
        "date": ms(ts),
        "dateString": ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "sgv": value,
        "delta": -1.5,
        "direction": direction,
        "type": "sgv",
        "filtered": 120000,
        "unfiltered": 121000,
        "rssi": 100,
        "noise": 1,
        "sysTime": ts.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
    }


def token_for(account: Account, profile_id: str, name: str, can_write: bool = False) -> str:
    r = account.client.post(
        f"/v1/profiles/{profile_id}/nightscout/tokens",
        json={"name": name, "can_write": can_write},
        headers=account.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def test_uploader_then_follower_see_every_field_they_read(account: Account) -> None:
    pid = self_profile(account)
    site = turn_on(account, pid)
    assert len(site["api_secret"]) >= 12 and site["base_url"].endswith(site_path(site))
    base, c = site_path(site), account.client
    up = uploader_headers(site)

    # Uploader: entries (the last 25 minutes, every 5), a meter reading, then a re-send.
    start = minutes_ago(25)
    values = [120, 118, 115, 113, 110, 108]
    entries = [xdrip_sgv(start + timedelta(minutes=5 * i), v) for i, v in enumerate(values)]
    mbg = {"type": "mbg", "mbg": 104, "date": ms(start), "device": "xDrip-Meter"}
    r = c.post(f"{base}/api/v1/entries", json=[*entries, mbg], headers=up)
    assert r.status_code == 200, r.text
    posted = r.json()
    assert [e["date"] for e in posted] == [e["date"] for e in [*entries, mbg]]
    assert all(len(e["_id"]) == 24 or uuid.UUID(e["_id"]) for e in posted)
    again = c.post(f"{base}/api/v1/entries", json=entries[-1], headers=up)
    assert again.status_code == 200, again.text

    # Uploader: treatments as AndroidAPS and xDrip+ post them, then devicestatus.
    t0 = minutes_ago(20).astimezone(UTC)
    treatments = [
        {
            "eventType": "Meal Bolus",
            "carbs": 45,
            "insulin": 4.5,
            "created_at": t0.isoformat().replace("+00:00", "Z"),
            "enteredBy": "AndroidAPS",
            "uuid": "c0ffee00-0000-4000-8000-000000000001",
        },
        {
            "eventType": "Correction Bolus",
            "insulin": 1.2,
            "created_at": (t0 + timedelta(minutes=5)).isoformat(),
            "enteredBy": "xdrip",
        },
        {
            "eventType": "Temp Basal",
            "duration": 30,
            "absolute": 0.4,
            "rate": 0.4,
            "created_at": (t0 + timedelta(minutes=6)).isoformat(),
            "pumpId": 4711,
        },
        {
            "eventType": "Note",
            "notes": "sensor warm-up",
            "created_at": ms(t0 + timedelta(minutes=7)),
        },
    ]
    r = c.post(f"{base}/api/v1/treatments", json=treatments, headers=up)
    assert r.status_code == 200, r.text
    assert [t["eventType"] for t in r.json()] == [t["eventType"] for t in treatments]
    c.post(f"{base}/api/v1/treatments", json=treatments[0], headers=up)  # AAPS re-sends
    status_doc = {
        "device": "openaps://samsung SM-G970F",
        "created_at": datetime.now(UTC).isoformat(),
        "openaps": {
            "iob": {"iob": 2.1, "basaliob": 0.3},
            "suggested": {"bg": 110, "eventualBG": 98},
        },
        "pump": {"battery": {"percent": 75}, "reservoir": 120.5, "status": {"status": "normal"}},
        "uploaderBattery": 80,
    }
    r = c.post(f"{base}/api/v1/devicestatus", json=status_doc, headers=up)
    assert r.status_code == 200, r.text

    # Vigil's own events show up as treatments as well.
    r = c.post(
        f"/v1/profiles/{pid}/events",
        json={
            "kind": "meal",
            "ts": (t0 + timedelta(minutes=8)).isoformat(),
            "details": {"carbs_g": 12},
        },
        headers=account.headers,
    )
    assert r.status_code == 201, r.text

    # Follower (Nightguard, xDrip+ follower): a read-only token in the query string.
    token = token_for(account, pid, "Nightguard")
    q = {"token": token}
    st = c.get(f"{base}/api/v1/status.json", params=q)
    assert st.status_code == 200, st.text
    settings = st.json()["settings"]
    assert settings["units"] == "mg/dl" and settings["authDefaultRoles"] == "denied"
    assert settings["thresholds"] == {
        "bgHigh": 250,
        "bgTargetTop": 180,
        "bgTargetBottom": 70,
        "bgLow": 55,
    }
    assert "careportal" in settings["enable"] and st.json()["apiEnabled"] is True

    sgv = c.get(f"{base}/api/v1/entries/sgv.json", params={**q, "count": 288}).json()
    assert [e["sgv"] for e in sgv] == values[::-1]  # newest first, duplicates once
    newest = sgv[0]
    assert newest["date"] == entries[-1]["date"] and newest["type"] == "sgv"
    assert newest["dateString"].endswith("Z")
    assert datetime.fromisoformat(newest["dateString"]).timestamp() * 1000 == newest["date"]
    assert newest["direction"] in {"Flat", "FortyFiveDown", "SingleDown"}
    assert newest["device"] == "vigil:nightscout-uploader" and len(newest["_id"]) == 24
    default = c.get(f"{base}/api/v1/entries.json", params=q).json()
    assert len(default) == 7 and {e["type"] for e in default} == {"sgv", "mbg"}
    assert c.get(f"{base}/api/v1/entries.json", params={**q, "count": 3}).json() == default[:3]
    meter = [e for e in default if e["type"] == "mbg"]
    assert meter[0]["mbg"] == 104 and meter[0]["device"] == "xDrip-Meter"

    since = entries[2]["date"]
    found = c.get(f"{base}/api/v1/entries/sgv.json", params={**q, "find[date][$gt]": since}).json()
    assert [e["sgv"] for e in found] == values[3:][::-1]
    window = {
        "find[dateString][$gte]": entries[1]["dateString"],
        "find[date][$lte]": entries[3]["date"],
    }
    found = c.get(f"{base}/api/v1/entries.json", params={**q, **window, "find[type]": "sgv"}).json()
    assert [e["sgv"] for e in found] == values[1:4][::-1]
    one = c.get(f"{base}/api/v1/entries/{found[0]['_id']}", params=q).json()
    assert one == [found[0]]

    current = c.get(f"{base}/api/v1/entries/current.json", params=q).json()
    assert current == [newest]

    tr = c.get(
        f"{base}/api/v1/treatments.json",
        params={**q, "find[created_at][$gte]": t0.isoformat(), "count": 100},
    ).json()
    by_type = {t["eventType"]: t for t in tr}
    assert len(tr) == 5  # the re-sent meal bolus is stored once
    assert by_type["Meal Bolus"]["carbs"] == 45 and by_type["Meal Bolus"]["insulin"] == 4.5
    assert by_type["Correction Bolus"]["insulin"] == 1.2
    assert by_type["Temp Basal"]["absolute"] == 0.4 and by_type["Temp Basal"]["duration"] == 30
    assert by_type["Note"]["notes"] == "sensor warm-up"
    assert by_type["Carb Correction"]["carbs"] == 12  # Vigil's own meal
    assert all(t["created_at"].endswith("Z") and t["mills"] > 0 for t in tr)
    vigil_events = c.get(f"/v1/profiles/{pid}/events", headers=account.headers).json()
    kinds = sorted(e["kind"] for e in vigil_events)
    assert kinds == ["custom", "insulin", "meal", "meal", "note"]

    ds = c.get(f"{base}/api/v1/devicestatus.json", params=q).json()
    assert ds[0]["openaps"] == status_doc["openaps"] and ds[0]["pump"] == status_doc["pump"]

    prof = c.get(f"{base}/api/v1/profile.json", params=q).json()
    store = prof[0]["store"][prof[0]["defaultProfile"]]
    assert store["units"] == "mg/dl" and store["timezone"] == "UTC"
    assert store["target_low"][0]["value"] == 70 and store["target_high"][0]["value"] == 180

    pebble = c.get(f"{base}/pebble", params={**q, "count": 2, "units": "mmol"}).json()
    assert [b["datetime"] for b in pebble["bgs"]] == [e["date"] for e in sgv[:2]]
    assert pebble["bgs"][0]["sgv"] == f"{values[-1] / 18.016:.1f}"
    assert pebble["bgs"][0]["bgdelta"] == round((values[-1] - values[-2]) / 18.016, 1)

    # Bearer, `api-secret: token=` and (xDrip+ follower) the token's SHA-1 carry it as well.
    for headers in (
        {"Authorization": f"Bearer {token}"},
        {"api-secret": f"token={token}"},
        {"api-secret": sha1(token)},
    ):
        assert c.get(f"{base}/api/v1/entries/current.json", headers=headers).json() == [newest]

    # The person sees the apps' reads in their audit log (GETs only; uploads are writes).
    def nightscout_reads() -> list[dict]:
        r = c.get("/v1/me/audit", params={"limit": 500}, headers=account.headers)
        return [e for e in r.json()["items"] if e["actor_kind"] == "nightscout"]

    reads = wait_until(lambda: len(nightscout_reads()) >= 12 and nightscout_reads())
    assert {e["profile_id"] for e in reads} == {pid}
    actions = {e["action"] for e in reads}
    assert "GET /ns/{site_id}/api/v1/entries/{spec}" in actions
    assert not any(a.startswith("POST") for a in actions)


def test_read_only_token_cannot_write_and_wrong_secret_is_refused_and_counted(
    account: Account, db
) -> None:
    pid = self_profile(account)
    site = turn_on(account, pid, api_secret="my family secret")
    base, c = site_path(site), account.client
    reader = token_for(account, pid, "watch")
    writer = token_for(account, pid, "careportal", can_write=True)
    entry = xdrip_sgv(minutes_ago(3), 140)

    r = c.post(f"{base}/api/v1/entries", json=[entry], params={"token": reader})
    assert r.status_code == 403, r.text
    r = c.post(
        f"{base}/api/v1/treatments",
        json={"eventType": "Note", "notes": "x"},
        params={"token": reader},
    )
    assert r.status_code == 403
    auth = c.get(f"{base}/api/v1/verifyauth", params={"token": reader}).json()["message"]
    assert (auth["canRead"], auth["canWrite"]) == (True, False)
    assert c.get(f"{base}/api/v1/experiments/test", params={"token": reader}).status_code == 403
    as_sha1 = {"api-secret": sha1(reader)}  # a token as xDrip+ follower sends it: still read-only
    assert c.post(f"{base}/api/v1/entries", json=[entry], headers=as_sha1).status_code == 403
    r = c.post(f"{base}/api/v1/entries", json=[entry], params={"token": writer})
    assert r.status_code == 200, r.text

    # The plain secret works as well as its SHA-1; a wrong one is 401 and counted.
    assert c.get(
        f"{base}/api/v1/experiments/test", headers={"api-secret": "my family secret"}
    ).json() == {"status": "ok"}
    assert c.get(f"{base}/api/v1/entries.json").status_code == 401
    wrong = c.get(f"{base}/api/v1/entries.json", headers={"api-secret": sha1("my family secreT")})
    assert wrong.status_code == 401
    assert c.get(f"{base}/api/v1/entries.json", params={"token": "nope-123"}).status_code == 401
    key = f"account:nightscout:{site_path(site).rsplit('/', 1)[1]}"
    failures = db.execute("SELECT count(*) FROM login_failures WHERE key = %s", (key,)).fetchone()[
        0
    ]
    assert failures == 2
    unauth = c.get(f"{base}/api/v1/verifyauth").json()["message"]
    assert unauth["canRead"] is False and unauth["message"] == "UNAUTHORIZED"

    # A token can be revoked on its own.
    listed = c.get(f"/v1/profiles/{pid}/nightscout/tokens", headers=account.headers).json()
    assert {t["name"]: t["can_write"] for t in listed} == {"watch": False, "careportal": True}
    assert all("token" not in t for t in listed)
    watch = next(t["id"] for t in listed if t["name"] == "watch")
    r = c.delete(f"/v1/profiles/{pid}/nightscout/tokens/{watch}", headers=account.headers)
    assert r.status_code == 200
    assert c.get(f"{base}/api/v1/status.json", params={"token": reader}).status_code == 401
    assert c.get(f"{base}/api/v1/status.json", params={"token": writer}).status_code == 200

    # Rotating the secret keeps the URL and retires the old secret; DELETE turns it off.
    rotated = turn_on(account, pid)
    assert rotated["base_url"] == site["base_url"] and rotated["api_secret"] != "my family secret"
    old = {"api-secret": sha1("my family secret")}
    assert c.get(f"{base}/api/v1/status.json", headers=old).status_code == 401
    assert c.get(f"{base}/api/v1/status.json", headers=uploader_headers(rotated)).status_code == 200
    assert c.delete(f"/v1/profiles/{pid}/nightscout", headers=account.headers).status_code == 200
    assert c.get(f"{base}/api/v1/status.json", headers=uploader_headers(rotated)).status_code == 404

    # Others cannot manage the site.
    stranger = sign_up(c)
    r = c.put(f"/v1/profiles/{pid}/nightscout", headers=stranger.headers)
    assert r.status_code == 404


def test_bad_documents_are_refused_naming_the_field(account: Account) -> None:
    pid = self_profile(account)
    site = turn_on(account, pid)
    base, c, up = site_path(site), account.client, uploader_headers(site)
    now = minutes_ago(1)
    cases = [
        ([xdrip_sgv(now, 700)], 422, "entries[0].sgv"),
        ([xdrip_sgv(now, 100), {**xdrip_sgv(now, 100), "sgv": "high"}], 422, "entries[1].sgv"),
        ([{"type": "sgv", "sgv": 100}], 422, "entries[0].date"),
        ([{**xdrip_sgv(now, 100), "type": "rawbg"}], 422, "entries[0].type"),
        ([{**xdrip_sgv(now, 100), "date": ms(now + timedelta(days=3))}], 422, "entries[0].date"),
    ]
    for body, code, field in cases:
        r = c.post(f"{base}/api/v1/entries", json=body, headers=up)
        assert r.status_code == code and field in r.json()["detail"], (body, r.text)
    deep: dict = {"created_at": now.isoformat()}
    node = deep
    for _ in range(12):
        node["x"] = {}
        node = node["x"]
    r = c.post(f"{base}/api/v1/devicestatus", json=deep, headers=up)
    assert r.status_code == 400 and "nested" in r.json()["detail"]
    r = c.post(f"{base}/api/v1/treatments", content=b"{not json", headers=up)
    assert r.status_code == 400 and "JSON" in r.json()["detail"]
    r = c.post(
        f"{base}/api/v1/treatments",
        json={"eventType": "Meal Bolus", "carbs": -5, "created_at": now.isoformat()},
        headers=up,
    )
    assert r.status_code == 422 and "treatments[0].carbs" in r.json()["detail"]
    r = c.get(f"{base}/api/v1/entries.json", params={"find[sgv][$gte]": 100}, headers=up)
    assert r.status_code == 400 and "find[sgv][$gte]" in r.json()["detail"]
    assert c.get(f"{base}/api/v1/entries.json", headers=up).json() == []  # nothing stored


def test_two_profiles_sites_side_by_side_do_not_mix(account: Account) -> None:
    c = account.client
    r = c.post("/v1/profiles", json={"name": "Sam"}, headers=account.headers)
    kid = r.json()["id"]
    me = self_profile(account)
    mine, theirs = turn_on(account, me), turn_on(account, kid)
    assert site_path(mine) != site_path(theirs)
    ts = minutes_ago(2)
    for site, value in ((mine, 101), (theirs, 202)):
        r = c.post(
            f"{site_path(site)}/api/v1/entries",
            json=[xdrip_sgv(ts, value)],
            headers=uploader_headers(site),
        )
        assert r.status_code == 200, r.text
    for site, value in ((mine, 101), (theirs, 202)):
        got = c.get(f"{site_path(site)}/api/v1/entries.json", headers=uploader_headers(site)).json()
        assert [e["sgv"] for e in got] == [value]
    # One site's secret opens nothing of the other's.
    r = c.get(f"{site_path(theirs)}/api/v1/entries.json", headers=uploader_headers(mine))
    assert r.status_code == 401


def test_an_uploaded_falling_series_fires_the_alerts(account: Account) -> None:
    pid = self_profile(account)
    site = turn_on(account, pid)
    base, c, up = site_path(site), account.client, uploader_headers(site)
    start = minutes_ago(12)
    for i in range(24):  # as a live uploader: one entry per POST, every 30 s
        value = round(130 - 3.5 * i)
        r = c.post(
            f"{base}/api/v1/entries",
            json=[xdrip_sgv(start + timedelta(seconds=30 * i), value)],
            headers=up,
        )
        assert r.status_code == 200, r.text

    def fired() -> list[str]:
        r = c.get("/v1/alerts", params={"profile_id": pid}, headers=account.headers)
        return [a["rule"] for a in r.json()]

    rules = wait_until(lambda: "urgent_low" in fired() and fired(), what="urgent low alert")
    assert "urgent_low_soon" in rules
    sgv = c.get(f"{base}/api/v1/entries/current.json", headers=up).json()[0]
    assert sgv["direction"] == "DoubleDown" and sgv["sgv"] == 50


def test_site_answers_404_for_unknown_sites(stack) -> None:
    with httpx.Client(base_url=stack.url) as c:
        r = c.get("/ns/does-not-exist/api/v1/status.json", headers={"api-secret": sha1("x" * 12)})
        assert r.status_code == 404
