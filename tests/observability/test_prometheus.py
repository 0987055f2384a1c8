"""A real Prometheus scraping the running stack counts exactly the readings uploaded and the
reads polled."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from cluster.observability import scrape_targets
from tests.helpers import Account, minutes_ago, series, wait_until
from tests.observability.prometheus import SCRAPE_S, Prometheus, running_prometheus

LATEST = "/v1/devices/{device_id}/latest"
POLLS = 30


def scraped(expr: str) -> str:
    """``expr``, empty while the target's last scrape failed: a scrape that times out on a
    loaded machine marks every series stale, which ``or vector(0)`` alone would read as a
    count of 0, and a plain query as no series at all."""
    return f'({expr}) and on() (min(up{{job="vigil"}}) == 1)'


def count(outcome: str) -> str:
    return scraped(f'sum(ray_vigil_readings_total{{outcome="{outcome}"}}) or vector(0)')


def reads(route: str, status: int) -> str:
    return scraped(
        f"sum(ray_vigil_read_request_seconds_count"
        f'{{route="{route}",status_code="{status}"}}) or vector(0)'
    )


def settled(
    prom: Prometheus, exprs: list[str], quiet_s: float = 10.0 + 2 * SCRAPE_S
) -> list[float]:
    """The values of ``exprs`` once they stayed unchanged for ``quiet_s`` (longer than
    Ray's 10 s metrics report interval and a scrape): earlier tests' uploads are all
    counted. A sample taken while the target's last scrape failed (no value) counts as a
    change, never as a value."""
    last, since = None, time.monotonic()
    deadline = since + 120
    while True:
        now = [prom.value(e) for e in exprs]
        if None in now or now != last:
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
        prom.wait_up(60)  # the node's metrics endpoint scraped
        outcomes = ["accepted", "duplicate", "rejected"]
        # Reads by route and status: answered by the replicas' read listeners and counted there
        # (HAProxy does not log them for Serve's request count).
        exprs = [count(o) for o in outcomes] + [reads(LATEST, 200), reads(LATEST, 404)]
        # A first reading, seen by Prometheus, before the count to compare with is taken: the
        # exporter's first scrapes can lack Vigil's series, which would settle at 0 and then
        # appear with every earlier test's readings.
        warm_up = account.device()
        assert account.upload(warm_up["id"], series(minutes_ago(1), 1, 60, 100.0, 0.0)).is_success
        wait_until(lambda: (prom.value(exprs[0]) or 0) > 0, 60, "Vigil's readings counted")
        before = settled(prom, exprs)
        assert before[0] > 0, before  # the warm-up's reading is in it

        readings = series(minutes_ago(200), 37, 300, 110.0, 0.2)
        first = account.upload(device["id"], readings)
        assert first.json() == {"accepted": 37, "duplicates": 0}
        again = account.upload(device["id"], readings[:11])  # re-sent: duplicates
        assert again.json() == {"accepted": 0, "duplicates": 11}
        bad = [*series(minutes_ago(5), 4, 60, 100.0, 0.0), {"ts": readings[0]["ts"], "value": -5}]
        assert account.upload(device["id"], bad).status_code == 422  # 5 rejected
        for _ in range(POLLS):
            r = account.client.get(f"/v1/devices/{device['id']}/latest", headers=account.headers)
            assert r.status_code == 200, r.text
        missing = account.client.get(f"/v1/devices/{uuid.uuid4()}/latest", headers=account.headers)
        assert missing.status_code == 404

        added = [37, 11, 5, POLLS, 1]
        expected = [b + a for b, a in zip(before, added, strict=True)]
        wait_until(
            lambda: [prom.value(e) for e in exprs] == expected,
            60,
            f"Prometheus to count {expected}",
        )

        # Per kind, and the write path's histogram and gauges reached Prometheus too.
        def the_rest_reached_prometheus() -> bool:
            kinds = {r["metric"]["kind"] for r in prom.query(scraped("ray_vigil_readings_total"))}
            return (
                "glucose" in kinds
                and (prom.value(scraped("sum(ray_vigil_commit_seconds_count)")) or 0) >= 1
                and (prom.value(scraped("sum(ray_vigil_device_actors)")) or 0) >= 1
                # Serve's own request metrics come through the same target.
                and bool(prom.query(scraped("ray_serve_num_http_requests_total")))
            )

        wait_until(
            the_rest_reached_prometheus,
            60,
            "readings by kind, commit times, device actors and Serve's requests in Prometheus",
        )
