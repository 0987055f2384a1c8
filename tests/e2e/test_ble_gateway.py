"""The BLE gateway end to end: virtual sensors → a real bumble GATT link → the gateway
(codec, durable queue) → the running Vigil over HTTP. Only the radio is virtual."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path

import pytest
from bumble.link import LocalLink

from sensor_ingest.ble import hts
from sensor_ingest.ble.bumble_link import BumbleLink
from sensor_ingest.ble.config import GatewayConfig, SensorConfig
from sensor_ingest.ble.controllers import ControllerPort
from sensor_ingest.ble.crc import crc16_mcrf4xx
from sensor_ingest.ble.gateway import Gateway
from sensor_ingest.ble.virtual import VirtualCGM, VirtualThermometer
from tests.helpers import Account
from tests.sensor_ingest.ble.helpers import (
    CGM_ADDRESS,
    STEADY,
    THERMOMETER_ADDRESS,
    WARM,
    eventually,
    fast_clock,
    running,
)

ROOT = Path(__file__).resolve().parents[2]


def registered(account: Account, kind: str = "glucose") -> tuple[str, str]:
    """A new Vigil device of ``kind``: its id and upload token."""
    created = account.device(kind)
    return created["id"], created["upload_token"]


def stored(account: Account, device_id: str) -> dict[float, float]:
    """What Vigil stored for the device: epoch seconds → value."""
    r = account.client.get(
        f"/v1/devices/{device_id}/readings", params={"limit": 10_000}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    return {datetime.fromisoformat(x["ts"]).timestamp(): x["value"] for x in r.json()}


def config_for(url: str, sensors: list[SensorConfig], queue: Path) -> GatewayConfig:
    return GatewayConfig(url=url, sensors=tuple(sensors), backend="bumble", queue_path=queue)


@asynccontextmanager
async def gateway_running(config: GatewayConfig, link: LocalLink) -> AsyncIterator[Gateway]:
    radio = BumbleLink(local_link=link)
    await radio.open()
    gateway = Gateway(config, radio, status_s=3600)
    try:
        async with running(gateway.run):
            yield gateway
    finally:
        await radio.close()


def expected_cgm(sensor: VirtualCGM) -> dict[float, float]:
    return {sensor.reading_time(r): r.glucose_mgdl for r in sensor.records}


async def test_virtual_cgm_streams_every_reading_with_its_time(
    stack, account: Account, tmp_path: Path
) -> None:
    device_id, token = registered(account)
    link = LocalLink()
    clock = fast_clock(behind_s=3600, speed=600)
    # Local time UTC-5 in its Session Start Time: the gateway must convert it to UTC.
    sensor = VirtualCGM(
        STEADY,
        CGM_ADDRESS,
        clock,
        session_start=time.time() - 8 * 3600,
        local_link=link,
        utc_offset_min=-300,
    )
    await sensor.start()
    config = config_for(
        stack.url, [SensorConfig(CGM_ADDRESS, "glucose", device_id, token)], tmp_path / "q.sqlite3"
    )
    async with gateway_running(config, link) as gateway:
        await eventually(lambda: len(sensor.records) >= 84 + 6)  # back-fill, then live
        await eventually(lambda: stored(account, device_id) == expected_cgm(sensor))
        # Every record so far is stored; the gateway counts one acknowledged once it has
        # read Vigil's answer, a moment after Vigil committed it (and the sensor goes on).
        shown = len(sensor.records)
        await eventually(lambda: gateway.counters()["acked"] >= shown)
        counters = gateway.counters()
    assert counters["decode_errors"] == 0
    assert counters["acked"] + counters["pending"] == counters["enqueued"]  # the rest waits
    assert shown <= counters["acked"] <= len(sensor.records)  # each record once
    await sensor.stop()


class Proxy:
    """A TCP forwarder to Vigil that can be taken down: Vigil unreachable, for real."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = 0
        self.server: asyncio.Server | None = None
        self.pipes: set[asyncio.Task] = set()

    async def up(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        assert self.server is not None
        self.server.close()
        for pipe in self.pipes:
            pipe.cancel()
        await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            finally:
                dst.close()

        tasks = {
            asyncio.create_task(pipe(reader, up_writer)),
            asyncio.create_task(pipe(up_reader, writer)),
        }
        self.pipes |= tasks
        await asyncio.gather(*tasks, return_exceptions=True)
        self.pipes -= tasks


async def test_vigil_unreachable_queue_holds_then_drains(
    stack, account: Account, tmp_path: Path
) -> None:
    device_id, token = registered(account)
    proxy = Proxy(int(stack.url.rsplit(":", 1)[1]))
    await proxy.up()
    link = LocalLink()
    clock = fast_clock(behind_s=2 * 3600, speed=300)  # 10 sensor minutes = 2 real seconds
    sensor = VirtualCGM(
        STEADY, CGM_ADDRESS, clock, session_start=time.time() - 4 * 3600, local_link=link
    )
    await sensor.start()
    config = config_for(
        f"http://127.0.0.1:{proxy.port}",
        [SensorConfig(CGM_ADDRESS, "glucose", device_id, token)],
        tmp_path / "q.sqlite3",
    )
    async with gateway_running(config, link) as gateway:
        await eventually(
            lambda: gateway.counters()["pending"] == 0 and gateway.counters()["acked"] > 0
        )
        await proxy.down()
        before = len(stored(account, device_id))
        offline_from = clock()
        await eventually(lambda: clock() - offline_from >= 900, timeout_s=20)  # 15 sensor minutes
        await eventually(lambda: gateway.counters()["pending"] >= 3)
        assert gateway.counters()["upload_failures"] >= 1
        assert len(stored(account, device_id)) == before  # Vigil got nothing meanwhile
        await proxy.up()
        # The sensor keeps measuring meanwhile: at some moment everything it measured is
        # stored and nothing is left in the queue.
        await eventually(
            lambda: (
                stored(account, device_id) == expected_cgm(sensor)
                and gateway.counters()["pending"] == 0
            ),
            60,
        )
    await proxy.down()
    await sensor.stop()


async def test_new_session_and_corrupted_notification(
    stack, account: Account, tmp_path: Path
) -> None:
    device_id, token = registered(account)
    link = LocalLink()
    clock = fast_clock(behind_s=3 * 3600, speed=300)
    sensor = VirtualCGM(
        STEADY, CGM_ADDRESS, clock, session_start=time.time() - 5 * 3600, local_link=link
    )
    await sensor.start()
    config = config_for(
        stack.url, [SensorConfig(CGM_ADDRESS, "glucose", device_id, token)], tmp_path / "q.sqlite3"
    )
    async with gateway_running(config, link) as gateway:
        await eventually(lambda: gateway.counters()["acked"] >= 24)
        body = bytes.fromhex("0800FF01A00F")  # 511 mg/dL at an offset never reached ...
        await sensor.inject(body + (crc16_mcrf4xx(body) ^ 0xFFFF).to_bytes(2, "little"))
        await eventually(lambda: gateway.counters()["decode_errors"] == 1)  # ... bad CRC
        await eventually(lambda: stored(account, device_id) == expected_cgm(sensor))
        first = expected_cgm(sensor)  # no await since the check: nothing new meanwhile
        sensor.start_session(clock())  # a sensor swap: offsets restart at 0
        await eventually(lambda: len(sensor.records) >= 4)
        await eventually(lambda: gateway.counters()["new_sessions"] == 1)
        await eventually(lambda: stored(account, device_id) == first | expected_cgm(sensor))
    assert 511.0 not in stored(account, device_id).values()
    await sensor.stop()


async def test_thermometer_in_fahrenheit_is_stored_in_celsius(
    stack, account: Account, tmp_path: Path
) -> None:
    device_id, token = registered(account, "temperature")
    link = LocalLink()
    clock = fast_clock(behind_s=900, speed=60)
    sensor = VirtualThermometer(
        WARM,
        THERMOMETER_ADDRESS,
        clock,
        fahrenheit=True,
        site=hts.TemperatureType.ARMPIT,
        utc_offset_min=60,
        local_link=link,
        since=clock() - 600,
    )
    await sensor.start()
    queue = tmp_path / "q.sqlite3"
    sensors = [SensorConfig(THERMOMETER_ADDRESS, "temperature", device_id, token, 60)]
    async with gateway_running(config_for(stack.url, sensors, queue), link):
        await eventually(lambda: len(stored(account, device_id)) >= 12)
    got = stored(account, device_id)
    sent = dict(sensor.sent)
    assert set(got) <= set(sent)  # the thermometer's UTC+1 stamps, back in UTC
    for ts, celsius in got.items():
        assert celsius == pytest.approx(sent[ts], abs=1e-9)  # sent in °F, stored in °C
        assert 30 < celsius < 42
    sites = {row[0] for row in sqlite3.connect(queue).execute("SELECT site FROM readings")}
    assert sites == {"axilla"}  # its Temperature Type, for the skin-to-core offset
    # ... uploaded with the readings and read back from Vigil's API with each of them.
    listed = account.client.get(
        f"/v1/devices/{device_id}/readings", params={"limit": 10_000}, headers=account.headers
    ).json()
    assert listed and {x["body_site"] for x in listed} == {"axilla"}
    await sensor.stop()


@pytest.mark.slow
async def test_gateway_killed_mid_stream_backfills_the_gap(
    stack, account: Account, tmp_path: Path
) -> None:
    """A separate gateway process on virtual controllers, killed with SIGKILL and started
    again: the restarted gateway back-fills the gap through RACP; nothing twice."""
    device_id, token = registered(account)
    link = LocalLink()
    gateway_port = ControllerPort("C0", link, "127.0.0.1", 0)
    sensor_port = ControllerPort("C1", link, "127.0.0.1", 0)
    await gateway_port.start()
    await sensor_port.start()
    clock = fast_clock(behind_s=3 * 3600, speed=300)
    sensor = VirtualCGM(
        STEADY,
        CGM_ADDRESS,
        clock,
        session_start=time.time() - 5 * 3600,
        transport=f"tcp-client:127.0.0.1:{sensor_port.port}",
    )
    await sensor.start()
    queue = tmp_path / "q.sqlite3"
    config = tmp_path / "gateway.toml"
    config.write_text(
        f'[vigil]\nurl = "{stack.url}"\n'
        f'[link]\nbackend = "bumble"\ntransport = "tcp-client:127.0.0.1:{gateway_port.port}"\n'
        f'[queue]\npath = "{queue}"\n'
        f'[[sensors]]\naddress = "{CGM_ADDRESS}"\nkind = "glucose"\n'
        f'device_id = "{device_id}"\nupload_token = "{token}"\n'
    )

    def start() -> subprocess.Popen:
        env = os.environ | {"PYTHONPATH": str(ROOT)}
        return subprocess.Popen(
            [sys.executable, "-m", "cluster.cli", "gateway", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )

    process = start()
    try:
        await eventually(lambda: len(stored(account, device_id)) >= 30, 60)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        killed_at = len(sensor.records)
        await eventually(lambda: len(sensor.records) >= killed_at + 4)  # the gap
        process = start()
        await eventually(lambda: stored(account, device_id) == expected_cgm(sensor), 60)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(20)
    enqueued = (
        sqlite3.connect(queue)
        .execute("SELECT value FROM counters WHERE name = 'enqueued'")
        .fetchone()[0]
    )
    assert enqueued == len(sensor.records)  # every record entered the queue exactly once
    await sensor.stop()
    await gateway_port.close()
    await sensor_port.close()


async def test_demo_sensors_reach_vigil_over_ble(stack, client, tmp_path: Path) -> None:
    """What `vigil up --demo` runs: the persona fleet over a virtual BLE link and a gateway."""
    from sensor_ingest.ble.demo import BleDemoConfig, run_ble_demo
    from tests.helpers import sign_up

    owner = sign_up(client)
    config = BleDemoConfig(
        base_url=stack.url,
        email=owner.email,
        password=owner.password,
        name="Demo",
        devices=2,
        queue_path=tmp_path / "demo.sqlite3",
        history_s=1800,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_ble_demo(config, stop))
    devices: list[dict] = []

    def both_have_readings() -> bool:
        devices[:] = client.get("/v1/devices", headers=owner.headers).json()
        return len(devices) == 2 and all(stored(owner, d["id"]) for d in devices)

    await eventually(both_have_readings, 60)
    stop.set()
    gateway = await asyncio.wait_for(task, 30)
    counters = gateway.counters()
    assert sorted(d["kind"] for d in devices) == ["glucose", "temperature"]
    assert counters["acked"] == sum(len(stored(owner, d["id"])) for d in devices)
    assert counters["decode_errors"] == 0
    assert counters["acked"] + counters["pending"] == counters["enqueued"]  # the rest waits
