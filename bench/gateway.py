"""BLE gateway benchmark: back-fill speed and CPU per live reading, beside HTTP yardsticks.

1. Back-fill: one virtual CGM whose session began 14 days ago holds 4,032 records; a fresh
   gateway connects over a bumble link, asks the Record Access Control Point for all of
   them and uploads them; timed until Vigil acknowledged the last one (target < 10 s).
   Yardstick: the same readings posted straight to ``POST /v1/devices/{id}/readings`` in
   the gateway's batch size.
2. CPU per live reading: 50 virtual CGMs on virtual controllers (the controllers host of
   ``sensor_ingest.ble.controllers``, in this process) and ``vigil gateway`` in its own
   process, the sensors' clocks running fast (one reading per sensor per second); the
   gateway process's CPU time (user + system, from /proc) over a window divided by the
   readings Vigil acknowledged in it. Yardstick: the CPU time a bare httpx client process
   spends posting as many readings to the HTTP API one reading per request, as a bridge
   without codec, BLE stack or queue would.

    .venv/bin/python -m bench.gateway [--url URL] [--sensors 50] [--window 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bumble.link import LocalLink

from bench.stack import vigil_url
from sensor_ingest.ble.bumble_link import BumbleLink
from sensor_ingest.ble.config import GatewayConfig, SensorConfig
from sensor_ingest.ble.controllers import ControllerPort
from sensor_ingest.ble.demo import sensor_address
from sensor_ingest.ble.gateway import Gateway
from sensor_ingest.ble.virtual import VirtualCGM
from sensor_ingest.simulate.client import iso_ts
from sensor_ingest.simulate.clock import SimulatedClock
from sensor_ingest.simulate.personas import GlucosePersona

ROOT = Path(__file__).resolve().parents[1]
DAY_S = 86_400
PERSONA = GlucosePersona("bench", 14, missed_reading_prob=0.0, dropout_prob=0.0)
TICK_S = os.sysconf("SC_CLK_TCK")


async def new_device(client: httpx.AsyncClient, headers: dict) -> tuple[str, str]:
    r = await client.post(
        "/v1/devices", json={"kind": "glucose", "serial": f"G{time.time_ns()}"}, headers=headers
    )
    r.raise_for_status()
    return r.json()["id"], r.json()["upload_token"]


async def account(client: httpx.AsyncClient) -> dict:
    email = f"bench-gw-{time.time_ns()}@example.com"
    body = {"email": email, "password": "benchmark passphrase", "name": "B"}
    (await client.post("/v1/auth/signup", json=body)).raise_for_status()
    form = {"username": email, "password": "benchmark passphrase"}
    token = (await client.post("/v1/auth/token", data=form)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


async def until(check, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step did not finish")
        await asyncio.sleep(0.05)


async def backfill(url: str, client: httpx.AsyncClient, headers: dict, tmp: Path) -> dict:
    device_id, token = await new_device(client, headers)
    link = LocalLink()
    now = time.time()
    sensor = VirtualCGM(
        PERSONA,
        "F0:00:00:00:00:01",
        time.time,
        session_start=now - 14 * DAY_S + 30,
        local_link=link,
    )
    await sensor.start()
    records = len(sensor.records)
    radio = BumbleLink(local_link=link)
    await radio.open()
    sensors = (SensorConfig(sensor.address, "glucose", device_id, token),)
    gateway = Gateway(GatewayConfig(url, sensors, "bumble", queue_path=tmp / "bf.sqlite3"), radio)
    stop = asyncio.Event()
    started = time.perf_counter()
    task = asyncio.create_task(gateway.run(stop))
    await until(lambda: gateway.counters()["acked"] >= records, 120)
    gateway_s = time.perf_counter() - started
    stop.set()
    await task
    await sensor.stop()
    await radio.close()

    # Yardstick: the same readings straight to the HTTP API, in the gateway's batch size.
    yard_id, _ = await new_device(client, headers)
    readings = [
        {"ts": iso_ts(sensor.reading_time(r)), "value": r.glucose_mgdl} for r in sensor.records
    ]
    started = time.perf_counter()
    for i in range(0, len(readings), 1000):
        r = await client.post(
            f"/v1/devices/{yard_id}/readings",
            json={"readings": readings[i : i + 1000]},
            headers=headers,
        )
        r.raise_for_status()
    http_s = time.perf_counter() - started
    return {"records": records, "gateway_s": gateway_s, "http_s": http_s}


def cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK_S  # utime + stime


def start_gateway(config: Path) -> subprocess.Popen:
    """``vigil gateway --config`` in its own process (so its CPU time is its own)."""
    return subprocess.Popen(
        [sys.executable, "-m", "cluster.cli", "gateway", "--config", str(config)],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def yardstick_cpu(url: str, device_id: str, token: str, n: int) -> float:
    """CPU seconds a bare HTTP client (own process, no Ray) spends posting ``n`` readings
    one per request to the same API."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bench.gateway",
        "--post-one-by-one",
        url,
        device_id,
        token,
        str(n),
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await child.communicate()
    return float(out.decode().split()[-1])


async def post_one_by_one(url: str, device_id: str, token: str, n: int) -> float:
    headers = {"Authorization": f"Bearer {token}"}
    start_ts = time.time() - 30 * DAY_S
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        cpu_before = time.process_time()
        for i in range(n):
            body = {"readings": [{"ts": iso_ts(start_ts + 300 * i), "value": 120.0}]}
            r = await client.post(f"/v1/devices/{device_id}/readings", json=body, headers=headers)
            r.raise_for_status()
        return time.process_time() - cpu_before


def counter(queue: Path, name: str) -> int:
    try:
        with sqlite3.connect(queue) as db:
            row = db.execute("SELECT value FROM counters WHERE name = ?", (name,)).fetchone()
    except sqlite3.OperationalError:  # the gateway has not created its tables yet
        return 0
    return int(row[0]) if row else 0


async def live_cpu(
    url: str, client: httpx.AsyncClient, headers: dict, tmp: Path, n: int, window_s: float
) -> dict:
    link = LocalLink()
    gateway_port = ControllerPort("gateway", link, "127.0.0.1", 0)
    await gateway_port.start()
    speed = 300.0  # one 5-minute reading per sensor per second
    real = time.time()
    behind = (window_s + 120) * speed
    clock = SimulatedClock(real, real - behind, speed)
    sensors, configs = [], []
    for i in range(n):
        device_id, token = await new_device(client, headers)
        sensor = VirtualCGM(
            PERSONA,
            sensor_address(i),
            lambda: clock.now(time.time()),
            session_start=real - behind,
            local_link=link,
            tick_s=0.5,
        )
        await sensor.start()
        sensors.append(sensor)
        configs.append(
            f'[[sensors]]\naddress = "{sensor.address}"\nkind = "glucose"\n'
            f'device_id = "{device_id}"\nupload_token = "{token}"\n'
        )
    queue = tmp / "live.sqlite3"
    config = tmp / "gateway.toml"
    config.write_text(
        f'[vigil]\nurl = "{url}"\n[link]\nbackend = "bumble"\n'
        f'transport = "tcp-client:127.0.0.1:{gateway_port.port}"\n'
        f'[queue]\npath = "{queue}"\n' + "".join(configs)
    )
    process = start_gateway(config)
    try:
        await until(lambda: queue.exists() and counter(queue, "connections") >= n, 120)
        await asyncio.sleep(3)  # settle: back-fills done, live streaming
        cpu0, acked0 = cpu_s(process.pid), counter(queue, "acked")
        await asyncio.sleep(window_s)
        cpu1, acked1 = cpu_s(process.pid), counter(queue, "acked")
    finally:
        process.terminate()
        process.wait(30)
        for sensor in sensors:
            await sensor.stop()
        await gateway_port.close()
    readings = acked1 - acked0

    # Yardstick: a process of its own posting as many readings, one reading per request.
    yard_id, yard_token = await new_device(client, headers)
    http_cpu = await yardstick_cpu(url, yard_id, yard_token, readings)
    return {
        "sensors": n,
        "readings": readings,
        "readings_per_s": readings / window_s,
        "gateway_cpu_ms_per_reading": 1000 * (cpu1 - cpu0) / max(readings, 1),
        "gateway_cpu_share": (cpu1 - cpu0) / window_s,
        "http_cpu_ms_per_reading": 1000 * http_cpu / max(readings, 1),
    }


async def run(url: str, sensors: int, window_s: float) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            headers = await account(client)
            bf = await backfill(url, client, headers, Path(tmp))
            print(f"backfill_records: {bf['records']}")
            print(f"backfill_gateway_s: {bf['gateway_s']:.2f}  (target < 10 s)")
            print(f"backfill_yardstick_http_s: {bf['http_s']:.2f}  (same readings, HTTP batches)")
            live = await live_cpu(url, client, headers, Path(tmp), sensors, window_s)
            print(
                f"live_sensors: {live['sensors']}  readings: {live['readings']}"
                f" ({live['readings_per_s']:.1f}/s)"
            )
            print(
                f"live_gateway_cpu_ms_per_reading: {live['gateway_cpu_ms_per_reading']:.2f}"
                f"  (gateway process at {100 * live['gateway_cpu_share']:.0f} % of a core)"
            )
            print(
                f"live_yardstick_http_cpu_ms_per_reading: {live['http_cpu_ms_per_reading']:.2f}"
                "  (a bare httpx client process, one reading per POST)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Vigil (default: a throwaway local stack)")
    parser.add_argument("--sensors", type=int, default=50)
    parser.add_argument("--window", type=float, default=30.0, help="seconds of live streaming")
    parser.add_argument("--post-one-by-one", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.post_one_by_one:
        url, device_id, token, n = args.post_one_by_one
        print(asyncio.run(post_one_by_one(url, device_id, token, int(n))))
        return
    with vigil_url(args.url) as url:
        asyncio.run(run(url, args.sensors, args.window))


if __name__ == "__main__":
    main()
