"""Charts (bucketed, at most 1,000 points, exact min/max) and statistics (the algorithms
package's numbers for the same readings, current and previous period)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from algorithms.glucose_stats import compare_with_previous
from algorithms.temperature_stats import temperature_stats
from api.reporting.sections import glucose_metrics, temperature_metrics, variability_metrics
from api.routes.charts import WINDOWS


def _now() -> datetime:
    return datetime.now(UTC).replace(second=0, microsecond=0)


def _glucose(n: int, step_s: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(n) * step_s
    curve = 140 + 70 * np.sin(2 * np.pi * t / 86400) + 35 * np.sin(2 * np.pi * t / 14400)
    return np.clip(np.round(curve + rng.normal(0, 8, n), 1), 40, 400)


def _upload(account, device_id: str, ts: np.ndarray, values: np.ndarray) -> None:
    readings = [
        {"ts": datetime.fromtimestamp(t, UTC).isoformat(), "value": float(v)}
        for t, v in zip(ts, values, strict=True)
    ]
    for i in range(0, len(readings), 10_000):
        r = account.upload(device_id, readings[i : i + 10_000])
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def one_minute_profile(stack):
    """A profile with a 1-minute CGM over 4 days and a 5-minute temperature patch."""
    import httpx

    from tests.helpers import sign_up

    client = httpx.Client(base_url=stack.url, timeout=120)
    account = sign_up(client)
    pid = client.get("/v1/profiles", headers=account.headers).json()[0]["id"]
    cgm = account.device("glucose", interval_s=60)
    end = _now().timestamp() - 60
    ts = end - np.arange(4 * 1440)[::-1] * 60.0
    values = _glucose(ts.size, 60, 1)
    _upload(account, cgm["id"], ts, values)
    patch = account.device("temperature", interval_s=300)
    tts = end - np.arange(4 * 288)[::-1] * 300.0
    temps = np.round(36.8 + 1.6 * np.exp(-(((tts - tts[600]) / 7200.0) ** 2)), 2)
    _upload(account, patch["id"], tts, temps)
    r = client.post(
        f"/v1/profiles/{pid}/events",
        json={"kind": "meal", "ts": datetime.fromtimestamp(end - 3600, UTC).isoformat()},
        headers=account.headers,
    )
    assert r.status_code == 201
    yield account, pid, cgm, patch, (ts, values), (tts, temps)
    client.close()


def test_every_window_has_at_most_1000_points(one_minute_profile) -> None:
    account, pid, cgm, _patch, _g, _t = one_minute_profile
    for window in WINDOWS:
        for params in ({}, {"device_id": cgm["id"]}):
            r = account.client.get(
                f"/v1/profiles/{pid}/chart",
                params={"window": window, **params},
                headers=account.headers,
            )
            assert r.status_code == 200, r.text
            body = r.json()
            assert body["points"] == sum(len(s["ts"]) for s in body["series"])
            assert 0 < body["points"] <= 1000, (window, body["points"])
            assert len(body["series"]) == (1 if params else 2)


def test_bucket_min_max_mean_count_equal_the_raw_data(one_minute_profile) -> None:
    account, pid, cgm, _patch, (ts, values), _t = one_minute_profile
    end = datetime.fromtimestamp(ts[-1] - 7 * 60 + 1, UTC)
    r = account.client.get(
        f"/v1/profiles/{pid}/chart",
        params={"window": "3d", "end": end.isoformat(), "device_id": cgm["id"]},
        headers=account.headers,
    )
    body = r.json()
    b = body["bucket_s"]
    assert b >= 60
    start = datetime.fromisoformat(body["start"]).timestamp()
    assert start % b == 0 and start <= end.timestamp() - 3 * 86400
    series = body["series"][0]
    keep = (ts >= start) & (ts < end.timestamp())
    bins = (ts[keep] // b) * b
    assert [datetime.fromisoformat(t).timestamp() for t in series["ts"]] == sorted(set(bins))
    for i, t in enumerate(sorted(set(bins))):
        raw = values[keep][bins == t]
        assert series["min"][i] == raw.min() and series["max"][i] == raw.max()
        assert series["count"][i] == raw.size
        assert series["mean"][i] == pytest.approx(raw.mean(), abs=1e-3)
    assert [e["kind"] for e in body["events"]] == ["meal"]


def test_chart_refuses_unknown_window_and_foreign_device(one_minute_profile) -> None:
    account, pid, *_ = one_minute_profile
    url = f"/v1/profiles/{pid}/chart"
    r = account.client.get(url, params={"window": "5y"}, headers=account.headers)
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["query", "window"]
    r = account.client.get(
        url,
        params={"device_id": "00000000-0000-0000-0000-000000000000"},
        headers=account.headers,
    )
    assert r.status_code == 404
    for path in ("chart", "stats", "report"):
        r = account.client.get(
            f"/v1/profiles/{pid}/{path}",
            params={"end": "1990-01-01T00:00:00Z"},
            headers=account.headers,
        )
        assert r.status_code == 422 and "end" in r.json()["detail"]


def test_stats_agree_with_the_algorithms_package(one_minute_profile) -> None:
    account, pid, _cgm, _patch, (ts, values), (tts, temps) = one_minute_profile
    end = datetime.fromtimestamp(ts[-1] + 1, UTC)
    r = account.client.get(
        f"/v1/profiles/{pid}/stats",
        params={"period": "24h", "end": end.isoformat()},
        headers=account.headers,
    )
    assert r.status_code == 200, r.text
    body = r.json()
    start_s, end_s = end.timestamp() - 86400, end.timestamp()
    profile = account.client.get(f"/v1/profiles/{pid}", headers=account.headers).json()
    expected = compare_with_previous(
        ts, values, start_s=start_s, end_s=end_s, interval_s=60, tz=profile["timezone"]
    )
    got = body["glucose"]
    assert got["current"] == glucose_metrics(expected.current).model_dump(mode="json")
    assert got["variability"] == variability_metrics(expected.variability).model_dump(mode="json")
    assert got["variability"]["mage_mgdl"] > 0 and got["variability"]["gri"]["zone"]
    assert got["previous"] == glucose_metrics(expected.previous).model_dump(mode="json")
    assert got["current"]["readings"] == 1440
    for key, change in expected.change.items():
        assert got["change"][key] == pytest.approx(change, rel=1e-12, abs=1e-12)
    assert got["current"]["hyper_episodes_above_180"], "the curve goes above 180 daily"

    temp = temperature_stats(tts, temps, start_s=start_s, end_s=end_s, interval_s=300)
    assert body["temperature"]["current"] == temperature_metrics(temp).model_dump(mode="json")


def test_stats_previous_period_is_empty_before_data(one_minute_profile) -> None:
    account, pid, *_ = one_minute_profile
    r = account.client.get(
        f"/v1/profiles/{pid}/stats", params={"period": "7d"}, headers=account.headers
    )
    body = r.json()
    assert body["glucose"]["previous"]["readings"] == 0
    assert body["glucose"]["previous"]["mean_mgdl"] is None
    assert body["glucose"]["change"]["mean_mgdl"] is None
    # Four days of readings: the day-to-day metrics have what they need.
    variability = body["glucose"]["variability"]
    assert variability["modd_mgdl"] > 0 and variability["conga24_mgdl"] > 0
    assert datetime.fromisoformat(body["end"]) - datetime.fromisoformat(body["start"]) == (
        timedelta(days=7)
    )
