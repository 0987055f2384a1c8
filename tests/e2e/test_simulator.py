"""The sensor simulators stream through the real API like phones would."""

from __future__ import annotations

import asyncio

from sensor_ingest.simulate.runner import SimulationConfig, run_simulation
from sensor_ingest.simulate.stats import SimulationStats
from tests.helpers import sign_up


def run_for(config: SimulationConfig, seconds: float) -> SimulationStats:
    """Run the simulator for ``seconds`` of real time, then stop it; its counters."""

    async def run() -> SimulationStats:
        stop = asyncio.Event()
        task = asyncio.create_task(run_simulation(config, stop))
        await asyncio.sleep(seconds)
        stop.set()
        return await task

    return asyncio.run(run())


def test_simulated_fleet_backfills_and_streams_live(stack, client) -> None:
    owner = sign_up(client)
    config = SimulationConfig(
        base_url=stack.url,
        email=owner.email,
        password=owner.password,
        name="Sim",
        devices=4,
        kind="mixed",
        speed=1.0,
        backfill_s=2 * 3600,
        seed=7,
    )

    stats = run_for(config, 4)
    assert stats.errors == 0
    assert stats.accepted > 0
    devices = client.get("/v1/devices", headers=owner.headers).json()
    assert sorted(d["kind"] for d in devices) == [
        "glucose",
        "glucose",
        "temperature",
        "temperature",
    ]
    for device in devices:
        latest = client.get(f"/v1/devices/{device['id']}/latest", headers=owner.headers)
        assert latest.status_code == 200, latest.text
        unit = latest.json()["unit"]
        value = latest.json()["value"]
        assert (unit, 40 <= value <= 400) == ("mg/dL", True) or (unit, 30 <= value <= 42) == (
            "°C",
            True,
        )

    # A restarted simulator reuses its devices and re-sends its backfill as duplicates.
    again = run_for(config, 2)
    assert len(client.get("/v1/devices", headers=owner.headers).json()) == 4
    assert again.duplicates > 0 and again.errors == 0


def test_a_simulated_device_streams_over_the_ingest_websocket(stack, client) -> None:
    owner = sign_up(client)
    config = SimulationConfig(
        base_url=stack.url,
        email=owner.email,
        password=owner.password,
        devices=2,
        kind="glucose",
        backfill_s=3600,
        seed=3,
        min_batch_interval_s=0.2,
        transport="ws",
    )

    stats = run_for(config, 4)
    assert stats.errors == 0 and stats.accepted > 0
    stored = 0
    for device in client.get("/v1/devices", headers=owner.headers).json():
        r = client.get(
            f"/v1/devices/{device['id']}/readings", params={"limit": 10_000}, headers=owner.headers
        )
        stored += len(r.json())
    assert stored == stats.accepted  # every acknowledged reading is stored, and only those
    again = run_for(config, 2)  # the backfill re-sent: duplicates, not new rows
    assert again.duplicates > 0 and again.errors == 0
