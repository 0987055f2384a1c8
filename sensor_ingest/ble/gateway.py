"""The gateway core: each configured sensor through connect → features and session →
subscribe → back-fill → live, into the durable queue that the uploader drains to Vigil.

Written against :mod:`sensor_ingest.ble.link` only. A CGM reading's time is the session
start (Session Start Time: local time with its zone and DST offset, converted to UTC here)
plus the record's time offset; its identity is (sensor, session start, offset), so a record
seen live, back-filled and back-filled again is queued once. On every connection the
gateway asks the Record Access Control Point for the records after the last offset Vigil
acknowledged, so a gap (gateway down, out of range) is filled; a sensor without RACP still
streams live. A record whose offset runs backwards means the sensor may have started a new
session: the gateway reconnects, which re-reads the session start (a new session is a new
series, never a jump of the clock). Bad bytes are counted and logged, never fatal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, timedelta

import httpx

from sensor_ingest.ble import cgm, hts, racp, uuids
from sensor_ingest.ble.config import GatewayConfig, SensorConfig
from sensor_ingest.ble.errors import DecodeError
from sensor_ingest.ble.link import GattConnection, GattLink, LinkError
from sensor_ingest.ble.queue import QueuedReading, ReadingQueue
from sensor_ingest.ble.uploader import Backoff, Uploader, UploadTarget

log = logging.getLogger(__name__)

RACP_IDLE_TIMEOUT_S = 15.0
# Control-point answers held for the back-fill to read (it reads one); what a sensor
# indicates beyond this is dropped, so a misbehaving sensor cannot grow the gateway's memory.
RACP_ANSWERS_KEPT = 8
"""A back-fill fails when neither a record nor the RACP answer came for this long."""
COUNTERS = (
    "enqueued",
    "duplicates",
    "acked",
    "decode_errors",
    "special_values",
    "new_sessions",
    "connections",
    "link_failures",
    "upload_failures",
    "rejected",
    "dropped_full",
)


class SensorRunner:
    """One sensor: connects with back-off until stopped; decoded readings go to ``sink``."""

    def __init__(
        self,
        sensor: SensorConfig,
        link: GattLink,
        queue: ReadingQueue,
        sink: Callable[[list[QueuedReading]], None],
        *,
        connect_timeout_s: float = 20.0,
        reconnect_max_s: float = 60.0,
        now: Callable[[], float] = time.time,
    ) -> None:
        self.sensor = sensor
        self.link = link
        self.queue = queue
        self.sink = sink
        self.connect_timeout_s = connect_timeout_s
        self.backoff = Backoff(first_s=0.5, max_s=reconnect_max_s)
        self.now = now
        self.session: int | None = None
        self.connected = asyncio.Event()
        self.backfilled = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            connecting = asyncio.ensure_future(
                self.link.connect(self.sensor.address, self.connect_timeout_s)
            )
            await _first(asyncio.shield(connecting), stop.wait())
            if not connecting.done():  # stopped while connecting (or waiting to)
                connecting.cancel()
                with contextlib.suppress(asyncio.CancelledError, LinkError):
                    await connecting
                return
            try:
                conn = connecting.result()
            except LinkError as exc:
                self.queue.count("link_failures")
                log.info("sensor %s: cannot connect (%s)", self.sensor.address, exc)
            else:
                self.queue.count("connections")
                await self._connected(conn, stop)
            if not stop.is_set():
                delay = self.backoff.next()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), delay)

    async def _connected(self, conn: GattConnection, stop: asyncio.Event) -> None:
        changed = asyncio.Event()
        try:
            if self.sensor.glucose:
                await self._cgm(conn, changed)
            else:
                await self._thermometer(conn)
            self.connected.set()
            self.backoff.reset()
            await _first(stop.wait(), conn.wait_disconnected(), changed.wait())
            if changed.is_set():
                log.info("sensor %s: offsets ran backwards; re-reading the session", conn.address)
        except DecodeError as exc:
            self.queue.count("decode_errors")
            log.warning("sensor %s: %s", conn.address, exc)
        except (LinkError, TimeoutError) as exc:
            self.queue.count("link_failures")
            log.info("sensor %s: link lost (%s)", conn.address, exc or type(exc).__name__)
        finally:
            self.connected.clear()
            with contextlib.suppress(LinkError, TimeoutError):
                await asyncio.wait_for(conn.disconnect(), 5.0)

    # -- CGM -----------------------------------------------------------------------------

    async def _cgm(self, conn: GattConnection, changed: asyncio.Event) -> None:
        svc = uuids.CGM_SERVICE
        if not conn.has(svc, uuids.CGM_MEASUREMENT):
            raise LinkError("no CGM Measurement characteristic")
        feature = cgm.decode_feature(await conn.read(svc, uuids.CGM_FEATURE))
        start = cgm.decode_session_start(
            await conn.read(svc, uuids.CGM_SESSION_START_TIME), crc=feature.crc
        )
        session = int(start.utc.timestamp())
        if self.session is None:  # first connection of this process: the queue remembers
            self.session = self.queue.latest_session(self.sensor.address)
        if self.session is not None and session != self.session:
            self.queue.count("new_sessions")
            log.info("sensor %s: new session started %s", conn.address, start.utc.isoformat())
        self.session = session
        self.backfilled.clear()
        live = _LiveCgm(self, session, feature.crc, changed)
        await conn.subscribe(svc, uuids.CGM_MEASUREMENT, live.on_value)
        if conn.has(svc, uuids.RECORD_ACCESS_CONTROL_POINT):
            await self._backfill(conn, session, live)
        self.backfilled.set()

    async def _backfill(self, conn: GattConnection, session: int, live: _LiveCgm) -> None:
        answers: asyncio.Queue[bytes] = asyncio.Queue(RACP_ANSWERS_KEPT)
        svc, point = uuids.CGM_SERVICE, uuids.RECORD_ACCESS_CONTROL_POINT
        await conn.subscribe(svc, point, keep_while_room(answers))
        acked = self.queue.acked_offset(self.sensor.address, session)
        request = racp.report_all() if acked is None else racp.report_from(acked // 60 + 1)
        live.backfilling = True
        try:
            await conn.write(svc, point, racp.encode_racp(request))
            answer = await self._racp_answer(answers, live)
        finally:
            live.backfilling = False
        ok = (racp.RacpResult.SUCCESS, racp.RacpResult.NO_RECORDS_FOUND)
        if answer.op is not racp.RacpOp.RESPONSE_CODE or answer.result not in ok:
            log.warning("sensor %s: back-fill refused (%s)", conn.address, answer)
        else:
            log.info("sensor %s: back-filled %d record(s)", conn.address, live.received)

    async def _racp_answer(self, answers: asyncio.Queue[bytes], live: _LiveCgm) -> racp.RacpMessage:
        while True:
            seen = live.received
            try:
                return racp.decode_racp(await asyncio.wait_for(answers.get(), RACP_IDLE_TIMEOUT_S))
            except TimeoutError:
                if live.received == seen:
                    raise LinkError("no answer from the Record Access Control Point") from None

    # -- thermometer ---------------------------------------------------------------------

    async def _thermometer(self, conn: GattConnection) -> None:
        svc = uuids.HEALTH_THERMOMETER_SERVICE
        if not conn.has(svc, uuids.TEMPERATURE_MEASUREMENT):
            raise LinkError("no Temperature Measurement characteristic")
        kind = None
        if conn.has(svc, uuids.TEMPERATURE_TYPE):
            kind = hts.decode_temperature_type(await conn.read(svc, uuids.TEMPERATURE_TYPE))
        await conn.subscribe(svc, uuids.TEMPERATURE_MEASUREMENT, _Thermometer(self, kind).on_value)
        self.backfilled.set()

    def utc_offset(self) -> timedelta:
        if self.sensor.utc_offset_min is not None:
            return timedelta(minutes=self.sensor.utc_offset_min)
        return timedelta(seconds=time.localtime().tm_gmtoff)

    def decode_failed(self, exc: DecodeError) -> None:
        self.queue.count("decode_errors")
        log.warning("sensor %s: rejected a value: %s", self.sensor.address, exc)

    def special(self, what: object) -> None:
        self.queue.count("special_values")
        log.info("sensor %s: %s value, not stored", self.sensor.address, what)


class _LiveCgm:
    """CGM Measurement values of one connection, in order."""

    def __init__(
        self, runner: SensorRunner, session: int, crc: bool, changed: asyncio.Event
    ) -> None:
        self.runner = runner
        self.session = session
        self.crc = crc
        self.changed = changed
        self.backfilling = False
        self.received = 0
        self.newest_offset = -1

    def on_value(self, value: bytes) -> None:
        if self.changed.is_set():
            return
        try:
            records = cgm.decode_measurements(value, crc=self.crc)
        except DecodeError as exc:
            self.runner.decode_failed(exc)
            return
        out = []
        for record in records:
            self.received += 1
            if not self.backfilling and record.time_offset_min < self.newest_offset:
                self.changed.set()  # its records come back by back-fill after reconnecting
                return
            self.newest_offset = max(self.newest_offset, record.time_offset_min)
            if not isinstance(record.glucose_mgdl, float):
                self.runner.special(record.glucose_mgdl)
                continue
            offset_s = record.time_offset_min * 60
            out.append(
                QueuedReading(
                    self.runner.sensor.address,
                    self.session,
                    offset_s,
                    self.runner.sensor.device_id,
                    float(self.session + offset_s),
                    record.glucose_mgdl,
                )
            )
        self.runner.sink(out)


class _Thermometer:
    """Temperature Measurement indications of one connection."""

    def __init__(self, runner: SensorRunner, kind: hts.TemperatureType | None) -> None:
        self.runner = runner
        self.kind = kind

    def on_value(self, value: bytes) -> None:
        try:
            m = hts.decode_temperature(value)
        except DecodeError as exc:
            self.runner.decode_failed(exc)
            return
        if not isinstance(m.celsius, float):
            self.runner.special(m.celsius)
            return
        if m.timestamp is None:
            ts = float(int(self.runner.now()))
        else:
            ts = (m.timestamp - self.runner.utc_offset()).replace(tzinfo=UTC).timestamp()
        site = hts.body_site(m.kind or self.kind)
        sensor = self.runner.sensor
        reading = QueuedReading(
            sensor.address, 0, int(ts), sensor.device_id, ts, m.celsius, site and str(site)
        )
        self.runner.sink([reading])


async def _first(*waits: Awaitable[object]) -> None:
    """Wait until the first of ``waits`` finishes; cancel the others."""
    tasks = [asyncio.ensure_future(w) for w in waits]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()


class Gateway:
    """All configured sensors, the queue and the uploader, until ``stop`` is set."""

    def __init__(
        self,
        config: GatewayConfig,
        link: GattLink,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        flush_s: float = 0.05,
        status_s: float = 60.0,
    ) -> None:
        self.config = config
        self.link = link
        self.queue = ReadingQueue(config.queue_path, max_readings=config.max_readings)
        self._transport = transport
        self.flush_s = flush_s
        self.status_s = status_s
        self._buffer: list[QueuedReading] = []
        self._flushed = asyncio.Event()
        self.uploader: Uploader | None = None
        self._final: dict[str, int] | None = None
        self.runners = [
            SensorRunner(
                s,
                link,
                self.queue,
                self._buffer.extend,
                connect_timeout_s=config.connect_timeout_s,
                reconnect_max_s=config.reconnect_max_s,
            )
            for s in config.sensors
        ]

    def counters(self) -> dict[str, int]:
        """The queue's persistent counters and how many readings wait for Vigil."""
        if self._final is not None:
            return self._final
        return {name: self.queue.counter(name) for name in COUNTERS} | {
            "pending": self.queue.pending_count()
        }

    def flush(self) -> None:
        """Move decoded readings into the queue (one transaction) and wake their uploads."""
        batch, self._buffer[:] = list(self._buffer), []
        if not batch:
            return
        added = self.queue.put(batch)
        if added < len(batch):
            self.queue.count("duplicates", len(batch) - added)
        if self.uploader is not None:
            for device_id in {r.device_id for r in batch}:
                self.uploader.wake(device_id)

    async def _flusher(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self.flush()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.flush_s)
        self.flush()

    async def _status(self, stop: asyncio.Event) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self.status_s)
            log.info("gateway: %s", " ".join(f"{k}={v}" for k, v in self.counters().items()))
            if stop.is_set():
                return

    async def run(self, stop: asyncio.Event) -> None:
        targets = [
            UploadTarget(s.device_id, s.upload_token, s.glucose) for s in self.config.sensors
        ]
        try:
            async with httpx.AsyncClient(
                base_url=self.config.url, timeout=30.0, transport=self._transport
            ) as client:
                self.uploader = Uploader(self.queue, client, targets)
                async with asyncio.TaskGroup() as group:
                    group.create_task(self.uploader.run(stop))
                    group.create_task(self._flusher(stop))
                    group.create_task(self._status(stop))
                    for runner in self.runners:
                        group.create_task(runner.run(stop))
        finally:
            self._final = self.counters()
            self.queue.close()


def keep_while_room(queue: asyncio.Queue[bytes]) -> Callable[[bytes], None]:
    """A notification handler that queues values while ``queue`` has room, dropping the rest."""

    def put(value: bytes) -> None:
        if not queue.full():
            queue.put_nowait(value)

    return put
