"""`vigil reports batch`: Ray tasks over profile chunks write a Parquet table whose metrics
are the stats endpoint's; re-running for the same window rewrites identical files."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import numpy as np
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cluster.batch_reports import VARIABILITY_COLUMNS
from cluster.cli import app
from tests.helpers import sign_up, store_readings


@pytest.fixture(scope="module")
def population(stack, database_url):
    import httpx

    client = httpx.Client(base_url=stack.url, timeout=120)
    account = sign_up(client)
    end = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    ts = end.timestamp() - np.arange(1, 20 * 288 + 1)[::-1] * 300.0
    rng = np.random.default_rng(9)
    ids = []
    for i, name in enumerate(("Ann", "Ben", "Cy")):
        p = client.post(
            "/v1/profiles", json={"name": name, "timezone": "America/New_York"},
            headers=account.headers,
        ).json()  # fmt: skip
        ids.append(p["id"])
        if i < 2:
            cgm = account.device("glucose", profile_id=p["id"])
            values = np.round(120 + 50 * i + 40 * np.sin(ts / 9000) + rng.normal(0, 9, ts.size))
            store_readings(database_url, cgm["id"], ts, np.clip(values, 40, 400))
        else:
            patch = account.device("temperature", profile_id=p["id"], interval_s=300)
            temps = np.round(36.9 + 1.5 * (np.sin(ts / 40000) > 0.8), 2)
            store_readings(database_url, patch["id"], ts, temps)
    yield account, ids, end
    client.close()


def test_batch_metrics_equal_stats_and_rerun_is_idempotent(
    population, database_url, tmp_path, monkeypatch
) -> None:
    account, ids, end = population
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    args = ["reports", "batch", "--days", "15", "--out", str(tmp_path), "--profiles",
            ",".join(ids), "--end", end.isoformat(), "--pdf", "--chunk-size", "2"]  # fmt: skip
    first = CliRunner().invoke(app, args)
    assert first.exit_code == 0, first.output
    assert "3 profiles" in first.output
    files = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    parquet = tmp_path / f"metrics_15d_{end:%Y%m%dT%H%MZ}.parquet"
    assert parquet.relative_to(tmp_path) in files and len(files) == 4  # table + 3 PDFs
    snapshot = {f: (tmp_path / f).read_bytes() for f in files}

    rows = {r["profile_id"]: r for r in pq.read_table(parquet).to_pylist()}
    assert sorted(rows) == sorted(ids)
    for pid in ids:
        stats = account.client.get(
            f"/v1/profiles/{pid}/stats",
            params={"period": "15d", "end": end.isoformat()},
            headers=account.headers,
        ).json()
        row = rows[pid]
        assert row["window_end"] == end and row["pdf"].startswith(pid)
        if stats["glucose"] is None:
            t = stats["temperature"]["current"]
            assert (row["readings"], row["temperature_readings"]) == (None, t["readings"])
            assert row["time_in_fever_pct"] == t["time_in_fever_pct"]
            assert row["fever_episodes"] == len(t["fever_episodes"])
            assert row["gri"] is None and row["mage_mgdl"] is None
            continue
        g = stats["glucose"]["current"]
        for key in ("readings", "mean_mgdl", "sd_mgdl", "cv_pct", "gmi_pct",
                    "data_sufficiency_pct"):  # fmt: skip
            assert row[key] == g[key], key
        for key, value in g["ranges"].items():
            assert row[key] == value, key
        assert row["hypo_episodes_below_70"] == len(g["hypo_episodes_below_70"])
        assert row["change_mean_mgdl"] == stats["glucose"]["change"]["mean_mgdl"]
        assert row["readings"] == 15 * 288
        v = stats["glucose"]["variability"]  # the same numbers, days in the profile's zone
        for key in VARIABILITY_COLUMNS:
            assert row[key] == v[key], key
        assert (row["gri"], row["gri_hypo_component"], row["gri_hyper_component"],
                row["gri_zone"]) == tuple(v["gri"].values())  # fmt: skip
        assert row["mage_mgdl"] > 0 and row["modd_mgdl"] > 0

    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0, again.output
    files_again = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert files_again == files
    assert {f: (tmp_path / f).read_bytes() for f in files} == snapshot


def test_batch_names_unknown_profiles(database_url, stack, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_DATABASE_URL", database_url)
    missing = str(uuid.uuid4())
    r = CliRunner().invoke(app, ["reports", "batch", "--out", str(tmp_path), "--profiles", missing])
    assert r.exit_code == 1 and missing in r.output
