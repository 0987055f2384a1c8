"""Starting a gateway from its config, and scanning: what ``vigil gateway`` calls."""

from __future__ import annotations

import asyncio
import logging

from sensor_ingest.ble import uuids
from sensor_ingest.ble.config import GatewayConfig
from sensor_ingest.ble.gateway import Gateway
from sensor_ingest.ble.link import Advertisement, GattLink

log = logging.getLogger(__name__)
PROFILES = {uuids.CGM_SERVICE: "glucose", uuids.HEALTH_THERMOMETER_SERVICE: "temperature"}


def make_link(backend: str, transport: str | None = None) -> GattLink:
    """The link adapter a config names (imported only when used)."""
    if backend == "bumble":
        from sensor_ingest.ble.bumble_link import BumbleLink

        return BumbleLink(transport)
    from sensor_ingest.ble.bleak_link import BleakLink

    return BleakLink()


async def run_gateway(
    config: GatewayConfig, stop: asyncio.Event, link: GattLink | None = None
) -> Gateway:
    """Run until ``stop``; returns the gateway (its counters) when stopped."""
    link = link or make_link(config.backend, config.transport)
    await link.open()
    gateway = Gateway(config, link)
    log.info(
        "gateway: %d sensor(s) -> %s, queue %s (%d waiting)",
        len(config.sensors),
        config.url,
        config.queue_path,
        gateway.queue.pending_count(),
    )
    try:
        await gateway.run(stop)
    finally:
        await link.close()
    return gateway


async def scan_sensors(link: GattLink, timeout_s: float) -> list[tuple[Advertisement, str]]:
    """Nearby sensors offering the CGM or Health Thermometer service, with their kind."""
    await link.open()
    try:
        found = await link.scan(timeout_s)
    finally:
        await link.close()
    out = []
    for adv in sorted(found, key=lambda a: a.address):
        kinds = [PROFILES[s] for s in adv.services if s in PROFILES]
        if kinds:
            out.append((adv, kinds[0]))
    return out
