"""A real Prometheus scraping the running stack counts exactly the readings uploaded and the
reads polled."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from cluster.observability import scrape_targets
from tests.helpers import Account, minutes_ago, series, wait_until
from tests.observability.prometheus import Prometheus, running_prometheus

COUNT = 'sum(ray_vigil_readings_total{{outcome="{}"}}) or vector(0)'
LATEST = "/v1/devices/{device_id}/latest"
READS = 'sum(ray_vigil_read_request_seconds_count{{route="{}",status_code="{}"}}) or vector(0)'
POLLS = 30


def settled(prom: Prometheus, exprs: list[str], quiet_s: float = 12.0) -> list[float]:
    """The values of ``exprs`` once they stayed unchanged for ``quiet_s`` (longer than
    Ray's 10 s metrics report interval): earlier tests' uploads are all counted."""
    last, since = None, time.monotonic()
    deadline = since + 120
    while True:
        now = [prom.value(e) or 0.0 for e in exprs]
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return now
        assert time.monotonic() < deadline, "metrics never settled"
        time.sleep(1)


@pytest.mark.slow
def test_prometheus_counts_the_readings_uploaded(stack, account: Account, tmp_path: Path) -> None:
    targets = scrape_targets()
    assert len(targets) == 1  # one node, one scrape target
    device = account.device()
    with running_prometheus(tmp_path, targets) as prom:
        wait_until(prom.targets_up, 60, "the node's metrics endpoint scraped")
        outcomes = ["accepted", "duplicate", "rejected"]
        exprs = [COUNT.format(o) for o in outcomes]
        # A first reading, seen by Prometheus, before the count to compare with is taken: the
        # exporter's first scrapes can lack Vigil's series, which would settle at 0 and then
        # appear with every earlier test's readings.
        warm_up = account.device()
        assert account.upload(warm_up["id"], series(minutes_ago(1), 1, 60, 100.0, 0.0)).is_success
        wait_until(lambda: (prom.value(exprs[0]) or 0) > 0, 60, "Vigil's readings counted")
        before = settled(prom, exprs)

        readings = series(minutes_ago(200), 37, 300, 110.0, 0.2)
        first = account.upload(device["id"], readings)
        assert first.json() == {"accepted": 37, "duplicates": 0}
        again = account.upload(device["id"], readings[:11])  # re-sent: duplicates
        assert again.json() == {"accepted": 0, "duplicates": 11}
        bad = [*series(minutes_ago(5), 4, 60, 100.0, 0.0), {"ts": readings[0]["ts"], "value": -5}]
        assert account.upload(device["id"], bad).status_code == 422  # 5 rejected
        # The polled reads: answered by the replicas' read listeners and counted there by
        # route and status (HAProxy does not log them for Serve's request count).
        for _ in range(POLLS):
            r = account.client.get(f"/v1/devices/{device['id']}/latest", headers=account.headers)
            assert r.status_code == 200, r.text
        missing = account.client.get(f"/v1/devices/{uuid.uuid4()}/latest", headers=account.headers)
        assert missing.status_code == 404

        expected = [before[0] + 37, before[1] + 11, before[2] + 5]
        wait_until(
            lambda: [prom.value(e) for e in exprs] == expected,
            60,
            f"Prometheus to count {expected}",
        )
        # At least these polls (the session's earlier tests read too).
        wait_until(
            lambda: (
                (prom.value(READS.format(LATEST, 200)) or 0) >= POLLS
                and (prom.value(READS.format(LATEST, 404)) or 0) >= 1
            ),
            60,
            "Prometheus to count the polled reads by route and status",
        )
        # Per kind, and the write path's histogram and gauges reached Prometheus too.
        kinds = {r["metric"]["kind"] for r in prom.query("ray_vigil_readings_total")}
        assert "glucose" in kinds
        assert prom.value("sum(ray_vigil_commit_seconds_count)") >= 1
        assert prom.value("sum(ray_vigil_device_actors)") >= 1
        # Serve's own request metrics come through the same target.
        assert prom.query("ray_serve_num_http_requests_total")
