"""The demo's sensors, over Bluetooth: virtual BLE sensors → bumble link → gateway → Vigil.

``vigil up --demo`` signs up the demo user, registers its devices (reused by serial on a
restart, like ``vigil simulate``), gives each an upload token, and starts one virtual
sensor per device on an in-process bumble link — CGMs whose session began ``history_s``
ago (the gateway back-fills that history through RACP) and thermometers holding that long
of stored measurements (indicated when the gateway subscribes). A gateway with its durable
queue then carries every reading to Vigil, as a bedside gateway would.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from bumble.link import LocalLink

from sensor_ingest.ble.bumble_link import BumbleLink
from sensor_ingest.ble.config import GatewayConfig, SensorConfig
from sensor_ingest.ble.gateway import Gateway
from sensor_ingest.ble.virtual import VirtualCGM, VirtualThermometer
from sensor_ingest.simulate.client import ApiError, VigilSession, ensure_account, ensure_devices
from sensor_ingest.simulate.clock import SimulatedClock
from sensor_ingest.simulate.fleet import make_fleet
from sensor_ingest.simulate.personas import GlucosePersona
from sensor_ingest.simulate.runner import SimulationConfig, device_request

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BleDemoConfig:
    base_url: str
    email: str
    password: str
    name: str
    devices: int
    queue_path: Path
    speed: float = 1.0
    history_s: float = 3 * 3600.0
    seed: int = 2026
    tz_offset_s: int = 0


def sensor_address(index: int) -> str:
    """A static random address per demo sensor (top bits 11): ``F0:00:00:00:00:07``."""
    return f"F0:00:00:00:{index >> 8 & 0xFF:02X}:{index & 0xFF:02X}"


async def _upload_tokens(session: VigilSession, device_ids: list[str]) -> list[str]:
    async def one(device_id: str) -> str:
        response = await session.request("POST", f"/v1/devices/{device_id}/upload-token")
        if response.status_code != 200:
            raise ApiError(f"upload token of {device_id}", response)
        return response.json()["upload_token"]

    return list(await asyncio.gather(*(one(d) for d in device_ids)))


async def run_ble_demo(config: BleDemoConfig, stop: asyncio.Event) -> Gateway:
    """Run the demo sensors and their gateway until ``stop``; returns the gateway."""
    sim = SimulationConfig(
        base_url=config.base_url,
        email=config.email,
        password=config.password,
        serial_prefix="demo",
    )
    personas = make_fleet(config.devices, "mixed", config.seed, tz_offset_s=config.tz_offset_s)
    async with httpx.AsyncClient(base_url=config.base_url, timeout=30) as client:
        session = await ensure_account(client, config.email, config.password, config.name)
        devices = await ensure_devices(
            session, [device_request(sim, i, p) for i, p in enumerate(personas)]
        )
        tokens = await _upload_tokens(session, [d.id for d in devices])
    real = time.time()
    clock = SimulatedClock(real, real, config.speed)

    def now() -> float:
        return clock.now(time.time())

    link = LocalLink()
    zone_min = config.tz_offset_s // 60
    sensors: list[VirtualCGM | VirtualThermometer] = []
    configs = []
    for i, (persona, device, token) in enumerate(zip(personas, devices, tokens, strict=True)):
        address = sensor_address(i)
        start = real - config.history_s
        if isinstance(persona, GlucosePersona):
            sensors.append(
                VirtualCGM(
                    persona,
                    address,
                    now,
                    session_start=start,
                    local_link=link,
                    utc_offset_min=zone_min,
                )
            )
            configs.append(SensorConfig(address, "glucose", device.id, token))
        else:
            sensors.append(
                VirtualThermometer(
                    persona, address, now, since=start, local_link=link, utc_offset_min=zone_min
                )
            )
            configs.append(SensorConfig(address, "temperature", device.id, token, zone_min))
    for sensor in sensors:
        await sensor.start()
    radio = BumbleLink(local_link=link)
    await radio.open()
    gateway = Gateway(
        GatewayConfig(
            url=config.base_url,
            sensors=tuple(configs),
            backend="bumble",
            queue_path=config.queue_path,
        ),
        radio,
    )
    try:
        await gateway.run(stop)
    finally:
        for sensor in sensors:
            await sensor.stop()
        await radio.close()
    return gateway
