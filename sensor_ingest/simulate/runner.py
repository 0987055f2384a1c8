"""Streaming a fleet of virtual sensors into Vigil over HTTP until told to stop.

At start the simulator signs up or logs in, registers its devices (reusing them by serial
after a restart), and posts each device's backfill — the readings of the ``backfill_s``
before the simulated clock's start — in one batch. Then each device posts whatever has
come due on the simulated clock (:class:`~sensor_ingest.simulate.clock.SimulatedClock`),
which starts ``start_lag_s`` behind real time, runs at ``speed`` and never passes real now.
The curves are functions of absolute time, so a restart continues the same ones and
re-sent readings come back as duplicates.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import httpx

from sensor_ingest.simulate.client import (
    DeviceRequest,
    VigilSession,
    chunked,
    ensure_account,
    ensure_devices,
    post_readings,
    readings_payload,
    wait_or_stop,
)
from sensor_ingest.simulate.clock import SimulatedClock
from sensor_ingest.simulate.fleet import FleetKind, make_fleet, sensor_for
from sensor_ingest.simulate.ingest_stream import IngestStream
from sensor_ingest.simulate.personas import GlucosePersona, Persona
from sensor_ingest.simulate.sensor import VirtualSensor
from sensor_ingest.simulate.stats import SimulationStats

log = logging.getLogger(__name__)

GLUCOSE_MODEL = "Vigil Virtual CGM"
TEMPERATURE_MODEL = "Vigil Virtual Patch"


@dataclass(frozen=True, slots=True)
class SimulationConfig:
    """What to simulate and where to send it."""

    base_url: str
    email: str
    password: str
    name: str = "Virtual Wearer"
    devices: int = 1
    kind: FleetKind = "glucose"
    speed: float = 1.0
    """Simulated seconds per real second while the clock is behind real time."""
    backfill_s: float = 3 * 3600.0
    """History posted in one batch per device at start."""
    seed: int = 0
    serial_prefix: str = "sim"
    start_lag_s: float = 0.0
    """How far behind real time the simulated clock starts (after the backfill); with
    ``speed > 1`` the clock catches up, with 0 it streams in real time straight away."""
    max_in_flight: int = 8
    """Bound on concurrent HTTP requests across all devices."""
    min_batch_interval_s: float = 1.0
    """Least real time between two posts of one device (batches readings while catching up)."""
    tz_offset_s: int | None = None
    """Wearers' UTC offset for meal and sleep times; None uses this machine's."""
    status_interval_s: float = 10.0
    """Seconds between status log lines (0 for none)."""
    request_timeout_s: float = 30.0
    transport: Literal["http", "ws"] = "http"
    """``http``: one POST per batch; ``ws``: each device keeps an ingest WebSocket open."""


def device_serial(config: SimulationConfig, index: int, persona: Persona) -> str:
    """A serial stable across restarts and distinct between accounts.

    ``{prefix}-{account tag}-{index}-{cgm|tmp}``, the tag being a hash of the email.
    """
    tag = hashlib.sha256(config.email.strip().lower().encode()).hexdigest()[:6]
    kind = "cgm" if isinstance(persona, GlucosePersona) else "tmp"
    return f"{config.serial_prefix}-{tag}-{index:04d}-{kind}"


def device_request(config: SimulationConfig, index: int, persona: Persona) -> DeviceRequest:
    """The registration of device ``index`` worn by ``persona``."""
    model = GLUCOSE_MODEL if isinstance(persona, GlucosePersona) else TEMPERATURE_MODEL
    return DeviceRequest(
        kind=persona.kind,
        serial=device_serial(config, index, persona),
        interval_s=persona.interval_s,
        model=model,
    )


def _local_utc_offset_s() -> int:
    return time.localtime().tm_gmtoff


class Simulation:
    """One simulator run; :attr:`stats` can be read at any time for a status line."""

    def __init__(
        self,
        config: SimulationConfig,
        *,
        now: Callable[[], float] = time.time,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        """``transport`` replaces the network, e.g. ``httpx.ASGITransport(app)`` in-process."""
        if config.devices < 0:
            raise ValueError("devices must be >= 0")
        if not config.speed > 0:
            raise ValueError("speed must be positive")
        self.config = config
        self.stats = SimulationStats()
        self._now = now
        self._transport = transport
        self.clock: SimulatedClock | None = None

    async def run(self, stop: asyncio.Event | None = None) -> SimulationStats:
        """Sign up or log in, register or reuse the devices, stream until ``stop`` is set."""
        cfg = self.config
        stop = stop if stop is not None else asyncio.Event()
        tz = cfg.tz_offset_s if cfg.tz_offset_s is not None else _local_utc_offset_s()
        personas = make_fleet(cfg.devices, cfg.kind, cfg.seed, tz_offset_s=tz)
        limits = httpx.Limits(max_connections=cfg.max_in_flight + 2)
        async with httpx.AsyncClient(
            base_url=cfg.base_url,
            timeout=cfg.request_timeout_s,
            limits=limits,
            transport=self._transport,
        ) as client:
            session = await ensure_account(
                client, cfg.email, cfg.password, cfg.name, max_in_flight=cfg.max_in_flight
            )
            requests = [device_request(cfg, i, p) for i, p in enumerate(personas)]
            devices = await ensure_devices(session, requests)
            self.stats.devices = len(devices)
            real_start = self._now()
            self.clock = SimulatedClock(real_start, real_start - cfg.start_lag_s, cfg.speed)
            log.info(
                "streaming %d %s device(s) for %s: backfill %.0f s, lag %.0f s, speed %g",
                len(devices),
                cfg.kind,
                cfg.email,
                cfg.backfill_s,
                cfg.start_lag_s,
                cfg.speed,
            )
            async with asyncio.TaskGroup() as group:
                for device, persona in zip(devices, personas, strict=True):
                    group.create_task(
                        self._stream(session, device.id, sensor_for(persona), self.clock, stop)
                    )
                if cfg.status_interval_s > 0:
                    group.create_task(self._report(stop))
        log.info("simulation stopped: %s", self.stats.status_line())
        return self.stats

    async def _stream(
        self,
        session: VigilSession,
        device_id: str,
        sensor: VirtualSensor,
        clock: SimulatedClock,
        stop: asyncio.Event,
    ) -> None:
        """Post one device's readings as they come due on ``clock`` until ``stop``."""
        cursor = clock.sim_start - self.config.backfill_s  # first instant not yet posted
        stream = IngestStream(session, device_id) if self.config.transport == "ws" else None
        try:
            while not stop.is_set():
                sim_now = clock.now(self._now())
                end = math.floor(sim_now) + 1  # reading times are whole seconds: t <= sim_now
                ts, values = sensor.readings_between(cursor, end)
                cursor = max(cursor, end)
                payload = readings_payload(sensor.kind, ts, values)
                for batch in chunked(payload):
                    if stop.is_set():
                        return
                    if stream is not None:
                        await stream.send(list(batch), self.stats, stop=stop)
                    else:
                        await post_readings(session, device_id, list(batch), self.stats, stop=stop)
                due = sensor.grid.next_at_or_after(cursor)
                delay = max(
                    clock.real_time_for(due) - self._now() + 0.001,
                    self.config.min_batch_interval_s,
                )
                if await wait_or_stop(stop, delay):
                    return
        except Exception:
            log.exception("device %s: streaming failed", device_id)
            self.stats.errors += 1
        finally:
            if stream is not None:
                await stream.close()

    async def _report(self, stop: asyncio.Event) -> None:
        """Log a status line every ``status_interval_s`` until ``stop``."""
        while not await wait_or_stop(stop, self.config.status_interval_s):
            if self.clock is not None:
                self.stats.lag_s = self.clock.lag(self._now())
            log.info("%s", self.stats.status_line())


async def run_simulation(
    config: SimulationConfig, stop: asyncio.Event | None = None
) -> SimulationStats:
    """Run a simulation until ``stop`` is set (forever without one); return its counters."""
    return await Simulation(config).run(stop)
