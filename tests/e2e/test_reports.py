"""The 15-day report over HTTP (JSON equals /stats; PDF is a PDF) and clinician links
(no login, expiring, revocable, every access recorded)."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import numpy as np
import pytest

from tests.helpers import sign_up


@pytest.fixture(scope="module")
def fifteen_days(stack):
    """A profile in Europe/Paris with 30 days of 5-minute glucose and some events."""
    client = httpx.Client(base_url=stack.url, timeout=120)
    account = sign_up(client)
    h = account.headers
    profile = client.post(
        "/v1/profiles", json={"name": "Mia", "timezone": "Europe/Paris"}, headers=h
    ).json()
    cgm = account.device("glucose", profile_id=profile["id"])
    end = datetime.now(UTC).replace(second=0, microsecond=0).timestamp() - 300
    ts = end - np.arange(30 * 288)[::-1] * 300.0
    rng = np.random.default_rng(5)
    day = 2 * np.pi * ts / 86400
    values = np.clip(np.round(130 + 60 * np.sin(day) + 30 * np.sin(3 * day) +
                              rng.normal(0, 10, ts.size), 1), 40, 400)  # fmt: skip
    readings = [
        {"ts": datetime.fromtimestamp(t, UTC).isoformat(), "value": float(v)}
        for t, v in zip(ts, values, strict=True)
    ]
    for i in range(0, len(readings), 10_000):
        assert account.upload(cgm["id"], readings[i : i + 10_000]).status_code == 200
    for hours in (5, 30, 80):
        r = client.post(
            f"/v1/profiles/{profile['id']}/events",
            json={
                "kind": "insulin",
                "ts": datetime.fromtimestamp(end - hours * 3600, UTC).isoformat(),
                "details": {"units": 3, "insulin_type": "rapid"},
            },
            headers=h,
        )
        assert r.status_code == 201
    yield account, profile, datetime.fromtimestamp(end + 1, UTC)
    client.close()


def test_json_report_metrics_equal_the_stats_endpoint(fifteen_days) -> None:
    account, profile, end = fifteen_days
    c, h, pid = account.client, account.headers, profile["id"]
    for days, period in ((15, "15d"), (7, "7d")):
        params = {"end": end.isoformat()}
        report = c.get(f"/v1/profiles/{pid}/report", params={**params, "days": days}, headers=h)
        assert report.status_code == 200, report.text
        stats = c.get(f"/v1/profiles/{pid}/stats", params={**params, "period": period}, headers=h)
        report, stats = report.json(), stats.json()
        assert report["glucose"] == stats["glucose"]
        assert (report["start"], report["end"]) == (stats["start"], stats["end"])
    assert report["glucose"]["current"]["readings"] == 7 * 288
    assert report["sufficient"] is True
    assert len(report["agp"]["values_mgdl"]) == 96
    assert len(report["daily"]) in (7, 8)
    assert [e["kind"] for e in report["events"]] == ["insulin"] * 3
    tir = next(t for t in report["targets"] if t["metric"] == "in_70_180_pct")
    assert tir["value"] == report["glucose"]["current"]["ranges"]["in_70_180_pct"]


def test_pdf_report_on_a4_and_letter(fifteen_days) -> None:
    account, profile, _end = fifteen_days
    for paper, box in (("a4", b"595"), ("letter", b"612")):
        r = account.client.get(
            f"/v1/profiles/{profile['id']}/report",
            params={"days": 15, "format": "pdf", "paper": paper},
            headers=account.headers,
        )
        assert r.status_code == 200, r.text
        assert r.headers["content-type"] == "application/pdf"
        assert r.content.startswith(b"%PDF") and b"/MediaBox [ 0 0 " + box in r.content


def test_report_link_is_read_only_expiring_revocable_and_audited(fifteen_days) -> None:
    account, profile, _end = fifteen_days
    c, h, pid = account.client, account.headers, profile["id"]
    made = c.post(
        f"/v1/profiles/{pid}/report-links",
        json={"days": 15, "expires_in_hours": 24, "label": "Dr Martin"},
        headers=h,
    )
    assert made.status_code == 201, made.text
    link = made.json()
    assert link["url"].endswith(f"/v1/report-links/{link['token']}?format=pdf")

    anonymous = httpx.Client(base_url=str(c.base_url), timeout=120)
    pdf = anonymous.get(f"/v1/report-links/{link['token']}", headers={"User-Agent": "clinic"})
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    js = anonymous.get(f"/v1/report-links/{link['token']}", params={"format": "json"}).json()
    assert js["profile"]["name"] == "Mia" and js["days"] == 15
    assert anonymous.get("/v1/report-links/" + "x" * 43).status_code == 404

    listed = c.get(f"/v1/profiles/{pid}/report-links", headers=h).json()
    assert [(x["id"], x["accesses"]) for x in listed] == [(link["id"], 2)]
    accesses = c.get(f"/v1/profiles/{pid}/report-links/{link['id']}/accesses", headers=h).json()
    assert sorted(a["format"] for a in accesses) == ["json", "pdf"]
    assert "clinic" in {a["user_agent"] for a in accesses}

    # A stranger can neither make nor revoke links for the profile.
    stranger = sign_up(c)
    assert (
        c.post(f"/v1/profiles/{pid}/report-links", json={}, headers=stranger.headers).status_code
        == 404
    )
    assert (
        c.delete(
            f"/v1/profiles/{pid}/report-links/{link['id']}", headers=stranger.headers
        ).status_code
        == 404
    )

    revoked = c.delete(f"/v1/profiles/{pid}/report-links/{link['id']}", headers=h)
    assert revoked.json() == {"revoked": True}
    assert anonymous.get(f"/v1/report-links/{link['token']}").status_code == 404
    anonymous.close()


def test_expired_link_stops_working(fifteen_days, db) -> None:
    account, profile, _end = fifteen_days
    link = account.client.post(
        f"/v1/profiles/{profile['id']}/report-links", json={}, headers=account.headers
    ).json()
    url = f"/v1/report-links/{link['token']}"
    assert account.client.get(url, params={"format": "json"}).status_code == 200
    db.execute(
        "UPDATE report_links SET expires_at = now() - interval '1 second' WHERE id = %s",
        (link["id"],),
    )
    assert account.client.get(url, params={"format": "json"}).status_code == 404
