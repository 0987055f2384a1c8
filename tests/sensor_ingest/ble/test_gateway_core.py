"""The gateway core against virtual sensors over a real bumble GATT link (no radio, no
Vigil): the queue is what the gateway promises to deliver."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from bumble.link import LocalLink

from sensor_ingest.ble import hts
from sensor_ingest.ble.bumble_link import BumbleLink
from sensor_ingest.ble.config import SensorConfig
from sensor_ingest.ble.crc import crc16_mcrf4xx
from sensor_ingest.ble.gateway import RACP_ANSWERS_KEPT, SensorRunner, keep_while_room
from sensor_ingest.ble.queue import QueuedReading, ReadingQueue
from sensor_ingest.ble.virtual import VirtualCGM, VirtualThermometer
from tests.sensor_ingest.ble.helpers import (
    CGM_ADDRESS,
    STEADY,
    THERMOMETER_ADDRESS,
    WARM,
    eventually,
    fast_clock,
    running,
)

DEVICE = "5b0c52f4-1f7e-4d6b-9d1c-4bd1b2a0c001"
CGM = SensorConfig(CGM_ADDRESS, "glucose", DEVICE, "token")


class Collected:
    """The gateway's sink: readings straight into the queue, as the gateway's flusher does."""

    def __init__(self, queue: ReadingQueue) -> None:
        self.queue = queue
        self.offered = 0

    def __call__(self, readings: list[QueuedReading]) -> None:
        self.offered += len(readings)
        self.queue.put(readings)

    def rows(self) -> list[tuple]:
        return self.queue._db.execute(
            "SELECT session, offset_s, ts, value, site FROM readings ORDER BY ts"
        ).fetchall()


async def cgm_setup(
    link: LocalLink, tmp_path: Path, clock, session_start: float, **sensor_options
) -> tuple[VirtualCGM, ReadingQueue, Collected, SensorRunner]:
    """A started virtual CGM, a queue, its sink and a gateway runner for the sensor."""
    sensor = VirtualCGM(
        STEADY,
        CGM_ADDRESS,
        clock,
        session_start=session_start,
        local_link=link,
        **sensor_options,
    )
    await sensor.start()
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    sink = Collected(queue)
    return sensor, queue, sink, SensorRunner(CGM, await gateway_link(link), queue, sink)


async def gateway_link(link: LocalLink) -> BumbleLink:
    gw = BumbleLink(local_link=link)
    await gw.open()
    return gw


async def test_backfill_then_live_with_times_from_session_start(
    link: LocalLink, tmp_path: Path
) -> None:
    clock = fast_clock(behind_s=3600, speed=600)
    start = time.time() - 86_400
    # A sensor in UTC+2 with daylight saving (+1 h): its Session Start Time reads local time.
    sensor, queue, sink, runner = await cgm_setup(
        link, tmp_path, clock, start, utc_offset_min=120, dst_code=4
    )
    async with running(runner.run):
        await asyncio.wait_for(runner.backfilled.wait(), 20)
        stored_at_backfill = len(sensor.records)
        await eventually(lambda: len(sensor.records) > stored_at_backfill + 3)
        await eventually(lambda: len(sink.rows()) >= len(sensor.records) - 1)
    rows = sink.rows()
    expected = {sensor.reading_time(r): r.glucose_mgdl for r in sensor.records}
    assert len(rows) >= stored_at_backfill + 3
    for session, offset_s, ts, value, _ in rows:
        assert session == sensor.session_start  # UTC, not the sensor's local time
        assert ts == session + offset_s and expected[ts] == value
    assert queue.counter("decode_errors") == 0
    await sensor.stop()


async def test_restart_backfills_the_gap_from_the_acknowledged_offset(
    link: LocalLink, tmp_path: Path
) -> None:
    clock = fast_clock(behind_s=7200, speed=300)  # a reading every real second
    sensor = VirtualCGM(
        STEADY, CGM_ADDRESS, clock, session_start=time.time() - 7 * 3600, local_link=link
    )
    await sensor.start()
    path = tmp_path / "q.sqlite3"
    queue = ReadingQueue(path)
    gw = await gateway_link(link)
    first = Collected(queue)
    async with running(SensorRunner(CGM, gw, queue, first).run):
        await eventually(lambda: len(first.rows()) > 63)
    queue.ack([p.id for p in queue.next_batch(DEVICE, 10_000)])  # Vigil took all of it
    acked = queue.acked_offset(CGM_ADDRESS, int(sensor.session_start))
    assert acked is not None
    queue.close()
    await asyncio.sleep(3)  # the gateway is down; the sensor goes on measuring
    missed = [r for r in sensor.records if r.time_offset_min * 60 > acked]
    assert len(missed) >= 2

    queue = ReadingQueue(path)  # restarted gateway, same queue file
    second = Collected(queue)
    runner = SensorRunner(CGM, gw, queue, second)
    async with running(runner.run):
        await asyncio.wait_for(runner.backfilled.wait(), 20)
    pending = queue.next_batch(DEVICE, 10_000)
    offsets = [round(p.ts - sensor.session_start) for p in pending]
    assert len(offsets) == len(set(offsets))  # nothing queued twice
    assert min(offsets) == missed[0].time_offset_min * 60  # the gap starts right after the ack
    assert {r.time_offset_min * 60 for r in missed} <= set(offsets)
    assert second.offered == len(pending)  # back-fill asked only for what Vigil lacked
    await sensor.stop()


async def test_new_session_is_a_new_series_not_a_clock_jump(
    link: LocalLink, tmp_path: Path
) -> None:
    clock = fast_clock(behind_s=3600, speed=300)
    sensor, queue, sink, runner = await cgm_setup(link, tmp_path, clock, time.time() - 3 * 3600)
    async with running(runner.run):
        await asyncio.wait_for(runner.backfilled.wait(), 20)
        old_session = sensor.session_start
        sensor.start_session(clock() - 60)
        await eventually(lambda: len(sensor.records) >= 3)
        await eventually(lambda: queue.counter("new_sessions") == 1)
        await eventually(lambda: any(row[0] == sensor.session_start for row in sink.rows()))
    sessions = {row[0] for row in sink.rows()}
    assert sessions == {old_session, sensor.session_start}
    for session, offset_s, ts, _, _ in sink.rows():
        assert ts == session + offset_s
    await sensor.stop()


async def test_corrupted_notification_is_rejected_and_counted(
    link: LocalLink, tmp_path: Path
) -> None:
    clock = fast_clock(behind_s=600, speed=1)
    sensor, queue, sink, runner = await cgm_setup(link, tmp_path, clock, time.time() - 3600)
    async with running(runner.run):
        await asyncio.wait_for(runner.backfilled.wait(), 20)
        before = len(sink.rows())
        body = bytes.fromhex("08007800A00F")  # 120 mg/dL at 4000 min, an offset not reached
        await sensor.inject(body + ((crc16_mcrf4xx(body) ^ 1).to_bytes(2, "little")))
        await sensor.inject(b"\x03")
        await eventually(lambda: queue.counter("decode_errors") == 2)
        assert runner.connected.is_set()  # bad bytes do not end the connection
    assert len(sink.rows()) == before
    assert all(row[1] != 4000 * 60 for row in sink.rows())
    await sensor.stop()


async def test_sensor_without_racp_still_streams(link: LocalLink, tmp_path: Path) -> None:
    clock = fast_clock(behind_s=3000, speed=300)
    sensor, _, sink, runner = await cgm_setup(link, tmp_path, clock, time.time() - 3600, racp=False)
    async with running(runner.run):
        await asyncio.wait_for(runner.connected.wait(), 20)
        stored = len(sensor.records)
        await eventually(lambda: len(sink.rows()) >= 3)
    first_live = sink.rows()[0][1] // 60
    assert first_live >= sensor.records[stored - 1].time_offset_min  # no history, live only
    await sensor.stop()


async def test_reconnects_when_the_sensor_drops_the_link(link: LocalLink, tmp_path: Path) -> None:
    clock = fast_clock(behind_s=1200, speed=300)
    sensor, queue, sink, runner = await cgm_setup(link, tmp_path, clock, time.time() - 7200)
    async with running(runner.run):
        await asyncio.wait_for(runner.backfilled.wait(), 20)
        await sensor.disconnect_all()
        await eventually(lambda: queue.counter("connections") == 2)
        await eventually(lambda: len(sink.rows()) >= len(sensor.records) - 1)
    offsets = [row[1] for row in sink.rows()]
    assert offsets == sorted(set(offsets))
    await sensor.stop()


async def test_thermometer_in_fahrenheit_is_stored_in_celsius_with_its_site(
    link: LocalLink, tmp_path: Path
) -> None:
    clock = fast_clock(behind_s=600, speed=60)
    sensor = VirtualThermometer(
        WARM,
        THERMOMETER_ADDRESS,
        clock,
        fahrenheit=True,
        site=hts.TemperatureType.TYMPANUM,
        utc_offset_min=-300,
        local_link=link,
        since=clock() - 300,
    )
    await sensor.start()
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    sink = Collected(queue)
    config = SensorConfig(THERMOMETER_ADDRESS, "temperature", DEVICE, "t", utc_offset_min=-300)
    runner = SensorRunner(config, await gateway_link(link), queue, sink)
    async with running(runner.run):
        await eventually(lambda: len(sink.rows()) >= 8)
    sent = dict(sensor.sent)
    for _, offset_s, ts, value, site in sink.rows():
        assert ts == offset_s and ts in sent  # the sensor's UTC-5 stamps back in UTC
        assert value == pytest.approx(sent[ts], abs=0.003)  # sent in °F to 0.01 °F
        assert site == "ear"
    await sensor.stop()


async def test_many_sensors_at_once(link: LocalLink, tmp_path: Path) -> None:
    clock = fast_clock(behind_s=3600, speed=300)
    start = time.time() - 2 * 3600
    sensors = [
        VirtualCGM(
            STEADY, f"F0:00:00:00:00:{i:02X}", clock, session_start=start + 60 * i, local_link=link
        )
        for i in range(6)
    ]
    for sensor in sensors:
        await sensor.start()
    queue = ReadingQueue(tmp_path / "q.sqlite3")
    sink = Collected(queue)
    gw = await gateway_link(link)
    runners = [
        SensorRunner(SensorConfig(s.address, "glucose", DEVICE, "t"), gw, queue, sink)
        for s in sensors
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(r.run(stop)) for r in runners]
    await asyncio.wait_for(asyncio.gather(*(r.backfilled.wait() for r in runners)), 30)
    stop.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 15)
    by_sensor = dict(
        queue._db.execute("SELECT sensor, count(*) FROM readings GROUP BY sensor").fetchall()
    )
    for sensor in sensors:  # each one's history, itself; at most a just-made one in flight
        assert len(sensor.records) - 1 <= by_sensor[sensor.address] <= len(sensor.records)
    for sensor in sensors:
        await sensor.stop()


def test_control_point_answers_are_held_only_while_there_is_room() -> None:
    """A sensor that floods the Record Access Control Point cannot grow the gateway's memory:
    the back-fill reads one answer, and at most RACP_ANSWERS_KEPT wait."""
    answers: asyncio.Queue[bytes] = asyncio.Queue(RACP_ANSWERS_KEPT)
    put = keep_while_room(answers)
    for i in range(10 * RACP_ANSWERS_KEPT):
        put(bytes([i]))
    assert answers.qsize() == RACP_ANSWERS_KEPT
    assert answers.get_nowait() == bytes([0])  # the first answers are the ones kept
    put(b"\xff")
    assert answers.qsize() == RACP_ANSWERS_KEPT
