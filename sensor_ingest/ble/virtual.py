"""Virtual sensors: bumble GATT peripherals for the CGM and Health Thermometer profiles,
driven by the simulator's personas (``sensor_ingest.simulate``).

They run on a clock passed in (a :class:`~sensor_ingest.simulate.clock.SimulatedClock` can
run fast and never passes real time) and speak the real profiles over a real bumble link:

- :class:`VirtualCGM` keeps its session's records (time offset, mg/dL) whether or not
  anyone is connected, notifies each new one to a subscriber, and replays stored records
  through the Record Access Control Point (several records per notification, as many as
  the negotiated MTU holds). ``start_session`` begins a new session, ``inject`` notifies
  arbitrary bytes (a corrupted value, for tests).
- :class:`VirtualThermometer` measures on its persona's schedule, in °C or °F, with its
  local time stamp and body site, and indicates what it measured while nobody listened
  once a collector subscribes again (as HTS thermometers do).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from bumble.core import UUID, AdvertisingData
from bumble.device import Connection
from bumble.gatt import Characteristic, CharacteristicValue, Service
from bumble.link import LocalLink

from sensor_ingest.ble import cgm, hts, racp, uuids
from sensor_ingest.ble.bumble_link import BumbleHost, open_host
from sensor_ingest.ble.errors import DecodeError
from sensor_ingest.simulate.cgm import VirtualCGM as CgmCurve
from sensor_ingest.simulate.personas import GlucosePersona, TemperaturePersona
from sensor_ingest.simulate.temperature import VirtualTemperaturePatch

log = logging.getLogger(__name__)

Props = Characteristic.Properties


def _char(short: int, props: Props, value: object) -> Characteristic:
    permissions = Characteristic.READABLE | Characteristic.WRITEABLE
    return Characteristic(UUID.from_16_bits(short), props, permissions, value)


def _advertising_data(service: int, name: str) -> bytes:
    return bytes(
        AdvertisingData(
            [
                (
                    AdvertisingData.COMPLETE_LIST_OF_16_BIT_SERVICE_CLASS_UUIDS,
                    bytes(UUID.from_16_bits(service)),
                ),
                (AdvertisingData.COMPLETE_LOCAL_NAME, name.encode()),
            ]
        )
    )


class _Peripheral:
    """A bumble device advertising one service, with a live loop run on ``clock``."""

    service_uuid: int
    name: str

    def __init__(
        self,
        address: str,
        clock: Callable[[], float],
        *,
        transport: str | None = None,
        local_link: LocalLink | None = None,
        tick_s: float = 0.2,
    ) -> None:
        self.address = address
        self.clock = clock
        self.transport = transport
        self.local_link = local_link
        self.tick_s = tick_s
        self.host: BumbleHost | None = None
        self._task: asyncio.Task | None = None

    def _service(self) -> Service:
        raise NotImplementedError

    def _advance(self) -> None:
        """Take the measurements that came due on the clock."""
        raise NotImplementedError

    async def _deliver(self) -> None:
        """Send what subscribers have not had yet."""
        raise NotImplementedError

    async def start(self) -> None:
        self.host = await open_host(
            self.name, self.address, transport=self.transport, local_link=self.local_link
        )
        self.host.device.add_service(self._service())
        await self.host.device.start_advertising(
            advertising_data=_advertising_data(self.service_uuid, self.name),
            auto_restart=True,
            advertising_interval_min=20,
            advertising_interval_max=20,
        )
        self._advance()
        self._task = asyncio.create_task(self._live())

    async def _live(self) -> None:
        while True:
            self._advance()
            try:
                await self._deliver()
            except Exception as exc:  # a subscriber left mid-delivery: the store keeps it
                log.debug("%s: delivery failed: %s", self.name, exc)
            await asyncio.sleep(self.tick_s)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.host is not None:
            await self.host.close()

    @property
    def connections(self) -> list[Connection]:
        return [] if self.host is None else list(self.host.device.connections.values())

    async def disconnect_all(self) -> None:
        for connection in self.connections:
            with contextlib.suppress(Exception):
                await connection.disconnect()


class VirtualCGM(_Peripheral):
    """A CGM (0x181F) reporting the persona's glucose every ``persona.interval_s``."""

    service_uuid = uuids.CGM_SERVICE
    name = "Vigil Virtual CGM"

    def __init__(
        self,
        persona: GlucosePersona,
        address: str,
        clock: Callable[[], float],
        *,
        session_start: float,
        crc: bool = True,
        utc_offset_min: int = 0,
        dst_code: int = 0,
        racp: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(address, clock, **kwargs)
        self.curve = CgmCurve(persona)
        self.has_racp = racp
        self.crc = crc
        self.utc_offset_min = utc_offset_min
        self.dst_code = dst_code
        self.records: list[cgm.CgmMeasurement] = []
        self._begin(session_start)
        features = cgm.Features.MULTIPLE_SESSIONS | (cgm.Features.E2E_CRC if crc else 0)
        self.feature = cgm.CgmFeature(cgm.Features(features), 9, 5)
        self._abort = False

    def _begin(self, session_start: float) -> None:
        self.session_start = float(math.floor(session_start / 60) * 60)
        self.records = []
        self._cursor = self.session_start
        self._sent = 0

    def start_session(self, session_start: float) -> None:
        """A new session from ``session_start``: the record store starts empty."""
        self._begin(session_start)
        self._advance()

    def session_start_time(self) -> cgm.SessionStartTime:
        utc = datetime.fromtimestamp(self.session_start, UTC)
        zone = timedelta(minutes=self.utc_offset_min + cgm.DST_OFFSET_MIN[self.dst_code])
        local = (utc + zone).replace(tzinfo=None)
        return cgm.SessionStartTime(local, self.utc_offset_min // 15, self.dst_code)

    def reading_time(self, record: cgm.CgmMeasurement) -> float:
        return self.session_start + record.time_offset_min * 60

    def _advance(self) -> None:
        end = math.floor(self.clock()) + 1
        ts, values = self.curve.readings_between(self._cursor, end)
        self._cursor = max(self._cursor, end)
        for t, v in zip(ts.tolist(), values.tolist(), strict=True):
            offset = int((t - self.session_start) // 60)
            if 0 <= offset <= 0xFFFF:
                self.records.append(cgm.CgmMeasurement(float(round(v)), offset))

    def _encode(self, record: cgm.CgmMeasurement) -> bytes:
        return cgm.encode_measurement(record, crc=self.crc)

    async def _deliver(self) -> None:
        if self.host is None:
            return
        while self._sent < len(self.records):
            record = self.records[self._sent]
            self._sent += 1
            await self.host.device.notify_subscribers(self.measurement, self._encode(record))

    async def inject(self, value: bytes) -> None:
        """Notify ``value`` as a CGM Measurement, whatever it is."""
        assert self.host is not None
        await self.host.device.notify_subscribers(self.measurement, value)

    def _service(self) -> Service:
        crc = self.crc
        self.measurement = _char(uuids.CGM_MEASUREMENT, Props.NOTIFY, b"")
        self.racp = _char(
            uuids.RECORD_ACCESS_CONTROL_POINT,
            Props.WRITE | Props.INDICATE,
            CharacteristicValue(write=self._on_racp),
        )
        self.socp = _char(
            uuids.CGM_SPECIFIC_OPS_CONTROL_POINT,
            Props.WRITE | Props.INDICATE,
            CharacteristicValue(write=self._on_socp),
        )
        read = Props.READ
        return Service(
            UUID.from_16_bits(uuids.CGM_SERVICE),
            [
                self.measurement,
                _char(uuids.CGM_FEATURE, read, cgm.encode_feature(self.feature)),
                _char(
                    uuids.CGM_STATUS,
                    read,
                    CharacteristicValue(read=lambda _: cgm.encode_status(self._status(), crc=crc)),
                ),
                _char(
                    uuids.CGM_SESSION_START_TIME,
                    read,
                    CharacteristicValue(
                        read=lambda _: cgm.encode_session_start(self.session_start_time(), crc=crc)
                    ),
                ),
                _char(uuids.CGM_SESSION_RUN_TIME, read, cgm.encode_run_time(336, crc=crc)),
                self.socp,
                *([self.racp] if self.has_racp else []),
            ],
        )

    def _status(self) -> cgm.CgmStatus:
        offset = int((self.clock() - self.session_start) // 60)
        return cgm.CgmStatus(max(0, min(offset, 0xFFFF)), 0, 0, 0)

    def _on_racp(self, connection: Connection, value: bytes) -> None:
        asyncio.get_running_loop().create_task(self._answer_racp(connection, bytes(value)))

    async def _answer_racp(self, connection: Connection, value: bytes) -> None:
        assert self.host is not None
        try:
            request = racp.decode_racp(value)
        except DecodeError:
            await self._racp_result(
                connection, racp.RacpOp.REPORT_RECORDS, racp.RacpResult.INVALID_OPERAND
            )
            return
        if request.op is racp.RacpOp.ABORT:
            self._abort = True
            await self._racp_result(connection, request.op, racp.RacpResult.SUCCESS)
            return
        chosen = self._select(request)
        if request.op is racp.RacpOp.REPORT_NUMBER:
            answer = racp.RacpMessage(racp.RacpOp.NUMBER_RESPONSE, count=len(chosen))
            await self.host.device.indicate_subscriber(
                connection, self.racp, racp.encode_racp(answer)
            )
            return
        if request.op is not racp.RacpOp.REPORT_RECORDS:
            await self._racp_result(connection, request.op, racp.RacpResult.OP_CODE_NOT_SUPPORTED)
            return
        self._abort = False
        await self._replay(connection, chosen)
        result = racp.RacpResult.SUCCESS if chosen else racp.RacpResult.NO_RECORDS_FOUND
        await self._racp_result(connection, request.op, result)

    def _select(self, request: racp.RacpMessage) -> list[cgm.CgmMeasurement]:
        if (
            request.operator is racp.RacpOperator.GREATER_OR_EQUAL
            and request.min_offset is not None
        ):
            return [r for r in self.records if r.time_offset_min >= request.min_offset]
        return list(self.records)

    async def _replay(self, connection: Connection, records: list[cgm.CgmMeasurement]) -> None:
        assert self.host is not None
        room = connection.att_mtu - 3
        pack = b""
        for record in records:
            if self._abort:
                return
            data = self._encode(record)
            if len(pack) + len(data) > room:
                await self.host.device.notify_subscriber(connection, self.measurement, pack)
                pack = b""
            pack += data
        if pack:
            await self.host.device.notify_subscriber(connection, self.measurement, pack)

    async def _racp_result(
        self, connection: Connection, request: racp.RacpOp, result: racp.RacpResult
    ) -> None:
        assert self.host is not None
        answer = racp.RacpMessage(racp.RacpOp.RESPONSE_CODE, request=request, result=result)
        await self.host.device.indicate_subscriber(connection, self.racp, racp.encode_racp(answer))

    def _on_socp(self, connection: Connection, value: bytes) -> None:
        asyncio.get_running_loop().create_task(self._answer_socp(connection, bytes(value)))

    async def _answer_socp(self, connection: Connection, value: bytes) -> None:
        assert self.host is not None
        try:
            request = cgm.decode_socp(value, crc=self.crc)
        except DecodeError:
            return
        if request.op is cgm.SocpOp.START_SESSION:
            self.start_session(self.clock())
        answer = cgm.SocpMessage(
            cgm.SocpOp.RESPONSE_CODE, request=request.op, result=cgm.SocpResult.SUCCESS
        )
        encoded = cgm.encode_socp(answer, crc=self.crc)
        await self.host.device.indicate_subscriber(connection, self.socp, encoded)


class VirtualThermometer(_Peripheral):
    """A Health Thermometer (0x1809) at ``site`` measuring the persona's temperature."""

    service_uuid = uuids.HEALTH_THERMOMETER_SERVICE
    name = "Vigil Virtual Thermometer"

    def __init__(
        self,
        persona: TemperaturePersona,
        address: str,
        clock: Callable[[], float],
        *,
        fahrenheit: bool = False,
        site: hts.TemperatureType = hts.TemperatureType.ARMPIT,
        utc_offset_min: int = 0,
        since: float | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(address, clock, **kwargs)
        self.curve = VirtualTemperaturePatch(persona)
        self.fahrenheit = fahrenheit
        self.site = site
        self.utc_offset_min = utc_offset_min
        self._cursor = clock() if since is None else since
        self.pending: deque[tuple[float, float]] = deque()
        self.sent: list[tuple[float, float]] = []
        self._listeners: set[Connection] = set()

    def _advance(self) -> None:
        end = math.floor(self.clock()) + 1
        ts, values = self.curve.readings_between(self._cursor, end)
        self._cursor = max(self._cursor, end)
        # Measured to 0.01 °C, the resolution it sends in °C.
        pairs = zip(ts.tolist(), values.tolist(), strict=True)
        self.pending.extend((t, round(v, 2)) for t, v in pairs)

    def measurement_for(self, ts: float, celsius: float) -> hts.TemperatureMeasurement:
        local = datetime.fromtimestamp(ts, UTC) + timedelta(minutes=self.utc_offset_min)
        return hts.TemperatureMeasurement(
            round(celsius, 2), self.fahrenheit, local.replace(tzinfo=None), self.site
        )

    async def _deliver(self) -> None:
        if self.host is None:
            return
        while self.pending and self._listeners:
            ts, celsius = self.pending[0]
            value = hts.encode_temperature(self.measurement_for(ts, celsius))
            connection = next(iter(self._listeners))
            await self.host.device.indicate_subscriber(connection, self.temperature, value)
            self.sent.append(self.pending.popleft())

    def _on_subscription(self, connection: Connection, notify: bool, indicate: bool) -> None:
        if indicate:
            self._listeners.add(connection)
            connection.on("disconnection", lambda *_: self._listeners.discard(connection))
        else:
            self._listeners.discard(connection)

    def _service(self) -> Service:
        self.temperature = _char(uuids.TEMPERATURE_MEASUREMENT, Props.INDICATE, b"")
        self.temperature.on("subscription", self._on_subscription)
        return Service(
            UUID.from_16_bits(uuids.HEALTH_THERMOMETER_SERVICE),
            [
                self.temperature,
                _char(uuids.TEMPERATURE_TYPE, Props.READ, hts.encode_temperature_type(self.site)),
                _char(
                    uuids.MEASUREMENT_INTERVAL,
                    Props.READ,
                    hts.encode_interval(self.curve.interval_s),
                ),
            ],
        )
