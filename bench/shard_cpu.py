"""CPU per reading of a shard's own work on one-reading batches: per device, and as arrays.

A ``DeviceShard`` hands each ``ingest_many`` call's batches to ``actors.device.accept_many``
(validation, de-duplication, trend, Kalman filter, prediction and alert rules of all devices
as one set of arrays). Its yardstick is the per-device path, ``DeviceActor.accept`` called for
each device, measured in the same run on an identical copy of the same fleet: ``--devices``
glucose devices whose windows are warm (an hour of readings) and whose streams and alert
states have run for ``--warmup`` minutes, each sending one reading a minute for
``--minutes`` minutes (10 % of them low, so alerts fire and repeat). CPU time of this process
(``time.process_time``), which the neighbours on shared cores inflate far less than wall
time; the load average is printed beside it. No database, no Ray: the shard's computing only.

    .venv/bin/python -m bench.shard_cpu [--devices 500 2000] [--minutes 30] [--warmup 5]
"""

from __future__ import annotations

import argparse
import copy
import os
import time
import uuid

import numpy as np

from actors.device import KEEP_US, BatchRejected, DeviceActor, PreparedBatch, accept_many
from storage.devices import DeviceInfo
from storage.readings import StoredReadings

US = 1_000_000
T0_US = 1_800_000_000 * US
MINUTE_US = 60 * US


def glucose(devices: int, minute: int) -> np.ndarray:
    """Each device's reading at ``minute``: a slow wave, 10 % of the devices around 50 mg/dL."""
    phase = np.arange(devices) * 0.37
    wave = 140 + 70 * np.sin(phase + minute / 45.0)
    return np.where(np.arange(devices) % 10 == 0, 50 + 3 * np.sin(minute / 7.0), wave)


def fleet(devices: int) -> list[DeviceActor]:
    """Glucose devices with an hour of one-minute readings in their windows."""
    minutes = KEEP_US // MINUTE_US
    ts = T0_US + np.arange(-minutes, 0) * MINUTE_US
    history = np.stack([glucose(devices, m) for m in range(-minutes, 0)], axis=1)
    return [
        DeviceActor(
            DeviceInfo(uuid.uuid4(), uuid.uuid4(), "glucose", 60),
            StoredReadings(ts.copy(), history[d].copy()),
        )
        for d in range(devices)
    ]


def batches(actors: list[DeviceActor], minute: int) -> list[tuple]:
    ts_us = T0_US + minute * MINUTE_US
    values = glucose(len(actors), minute)
    return [
        (a, np.array([ts_us + d], np.int64), values[d : d + 1].copy(), ts_us, False)
        for d, a in enumerate(actors)
    ]


def one_by_one(items: list[tuple], now_us: int) -> list[PreparedBatch | BatchRejected]:
    """The per-device path, the yardstick."""
    return [a.accept(ts, v, now_us, rx, history) for a, ts, v, rx, history in items]


def measure(devices: int, minutes: int, warmup: int) -> dict[str, float]:
    single = fleet(devices)
    together = copy.deepcopy(single)
    for minute in range(warmup):
        now = T0_US + minute * MINUTE_US + 2 * US
        one_by_one(batches(single, minute), now)
        accept_many(batches(together, minute), now)
    spent = {"accept": 0.0, "accept_many": 0.0}
    alerts = {"accept": 0, "accept_many": 0}
    for minute in range(warmup, warmup + minutes):
        now = T0_US + minute * MINUTE_US + 2 * US
        for name, actors, run in (
            ("accept", single, one_by_one),
            ("accept_many", together, accept_many),
        ):
            items = batches(actors, minute)  # built outside the timed part
            t0 = time.process_time()
            out = run(items, now)
            spent[name] += time.process_time() - t0
            alerts[name] += sum(len(p.ops) for p in out if isinstance(p, PreparedBatch))
    if alerts["accept"] != alerts["accept_many"]:
        raise SystemExit(f"the two paths differ: {alerts}")
    readings = devices * minutes
    return {
        "accept_ms": 1000 * spent["accept"] / readings,
        "accept_many_ms": 1000 * spent["accept_many"] / readings,
        "alert_changes": alerts["accept"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="+", default=[500, 2000])
    parser.add_argument("--minutes", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    for devices in args.devices:
        load = os.getloadavg()
        r = measure(devices, args.minutes, args.warmup)
        print(
            f"devices: {devices}  minutes: {args.minutes}  alert changes: "
            f"{r['alert_changes']:.0f} (each path)  load: {load[0]:.1f} -> {os.getloadavg()[0]:.1f}"
        )
        print(f"  per-device accept (yardstick): {r['accept_ms']:.4f} ms CPU per reading")
        print(f"  accept_many (arrays):          {r['accept_many_ms']:.4f} ms CPU per reading")
        print(f"  shard_cpu_ratio: {r['accept_many_ms'] / r['accept_ms']:.3f}")


if __name__ == "__main__":
    main()
