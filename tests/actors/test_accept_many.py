"""``accept_many`` (many devices' batches as one set of arrays) gives exactly what each
device's own ``DeviceActor.accept`` gives: every reading's trend, every prediction and
filter state, every alert, every rejection and duplicate count, on one simulated fleet."""

from __future__ import annotations

import copy
import uuid
from dataclasses import astuple

import numpy as np
import pytest

from actors.device import BatchRejected, DeviceActor, PreparedBatch, accept_many
from storage.devices import DeviceInfo
from storage.readings import StoredReadings

US = 1_000_000
T0_US = 1_800_000_000 * US
EMPTY = StoredReadings(np.zeros(0, np.int64), np.zeros(0))


def fleet(devices: int, seed: int) -> list[DeviceActor]:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["glucose", "glucose", "glucose", "temperature"], devices)
    return [DeviceActor(DeviceInfo(uuid.uuid4(), uuid.uuid4(), str(k), 60), EMPTY) for k in kinds]


def levels(actors: list[DeviceActor], minutes: int, seed: int) -> np.ndarray:
    """Each device's true level per minute: glucose drifting into lows and highs, temperature
    into fevers (so that alerts fire, repeat and clear)."""
    rng = np.random.default_rng(seed)
    steps = rng.normal(0, 1, (len(actors), minutes))
    swing = rng.uniform(40, 160, len(actors))[:, None]
    phase = rng.uniform(0, 2 * np.pi, len(actors))[:, None]
    t = np.arange(minutes)[None, :]
    glucose = 130 + swing * np.sin(phase + t / rng.uniform(15, 60)) + np.cumsum(steps, axis=1)
    temperature = 37.3 + 1.5 * np.sin(phase + t / 40) + 0.05 * steps
    is_glucose = np.array([a.info.kind == "glucose" for a in actors])[:, None]
    return np.where(is_glucose, np.clip(glucose, 40, 400), temperature)


def batches_at(minute: int, truth: np.ndarray, rng: np.random.Generator) -> list[tuple]:
    """What each device sends this minute: mostly its one new reading; sometimes also the
    previous one again, a late one out of order, a repeated time, an invalid value, or
    nothing (and a device now and then sends a second batch in the same call)."""
    out = []
    for d in range(truth.shape[0]):
        ts = [T0_US + minute * 60 * US + d]
        values = [float(truth[d, minute])]
        roll = rng.random()
        if roll < 0.03:
            continue
        if roll < 0.06 and minute:
            ts.append(ts[0] - 60 * US)  # re-sent
            values.append(float(truth[d, minute - 1]))
        elif roll < 0.08 and minute > 3:
            ts.insert(0, ts[0] - 150 * US)  # a late reading, between two stored ones
            values.insert(0, float(truth[d, minute - 3]))
        elif roll < 0.09:
            ts.append(ts[0])  # repeated time within the batch
            values.append(values[0] + 1)
        elif roll < 0.10:
            values[0] = float("nan")  # invalid: the whole batch is rejected
        out.append((d, np.array(ts, np.int64), np.array(values), bool(rng.random() < 0.02)))
        if roll > 0.99:
            out.append((d, np.array([ts[-1] + 30 * US]), np.array([values[-1]]), False))
    return out


def summary(result: PreparedBatch | BatchRejected) -> tuple:
    """Everything a batch produces, alert ids left out (they are random)."""
    if isinstance(result, BatchRejected):
        return ("rejected", [astuple(p) for p in result.problems])
    rows = result.rows
    ops = [(op.type, op.rule, op.severity, op.value, op.threshold, op.reading_ts_s,
            op.received_s, op.decided_s) for op in result.ops]  # fmt: skip
    return (
        rows.ts_us.tolist(),
        rows.values.tolist(),
        np.where(np.isnan(rows.rate_per_min), -1e9, rows.rate_per_min).tolist(),
        list(rows.direction),
        result.duplicates,
        ops,
        None if result.live is None else astuple(result.live),
    )


def run_both(devices: int, minutes: int, seed: int) -> int:
    """Run the fleet through both paths; returns the alert changes seen (all identical)."""
    one_by_one = fleet(devices, seed)
    together = copy.deepcopy(one_by_one)
    truth = levels(one_by_one, minutes, seed)
    rng = np.random.default_rng(seed + 1)
    alerts = 0
    for minute in range(minutes):
        now_us = T0_US + minute * 60 * US + 5 * US
        sent = batches_at(minute, truth, rng)
        expected = []
        for d, ts, values, history in sent:
            try:
                expected.append(one_by_one[d].accept(ts, values, now_us, now_us, history))
            except BatchRejected as rejected:
                expected.append(rejected)
        got = accept_many([(together[d], ts, v, now_us, h) for d, ts, v, h in sent], now_us)
        assert [summary(g) for g in got] == [summary(e) for e in expected], minute
        for a, b in zip(one_by_one, together, strict=True):
            assert a.alerts.state_dict() == b.alerts.state_dict()  # filter, evaluator
            assert [w.tolist() for w in a.window] == [w.tolist() for w in b.window]
        alerts += sum(len(e.ops) for e in expected if isinstance(e, PreparedBatch))
    return alerts


def test_a_small_fleet_gives_the_same_results_both_ways() -> None:
    assert run_both(devices=30, minutes=60, seed=7) > 10  # alerts fired, repeated, cleared


@pytest.mark.slow
def test_a_thousand_devices_over_an_hour_give_the_same_results_both_ways() -> None:
    assert run_both(devices=1000, minutes=60, seed=12) > 100


def test_empty_invalid_and_repeated_device_batches_keep_their_places() -> None:
    a, b = (DeviceActor(DeviceInfo(uuid.uuid4(), uuid.uuid4(), "glucose", 60), EMPTY) for _ in "ab")
    now = T0_US
    out = accept_many(
        [
            (a, np.array([now]), np.array([100.0]), now, False),
            (b, np.zeros(0, np.int64), np.zeros(0), now, False),
            (b, np.array([now]), np.array([1e6]), now, False),  # out of range
            (a, np.array([now, now + 60 * US]), np.array([100.0, 101.0]), now, False),
        ],
        now,
    )
    assert isinstance(out[2], BatchRejected) and out[2].problems[0].field == "value"
    assert [len(p.rows) for p in (out[0], out[1], out[3])] == [1, 0, 1]
    assert out[3].duplicates == 1  # a's second batch saw its first
    assert accept_many([], now) == []
