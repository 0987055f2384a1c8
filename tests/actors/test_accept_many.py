"""``accept_many`` (many devices' batches as one set of arrays) gives exactly what each
device's own ``DeviceActor.accept`` gives: every reading's trend, every prediction and
filter state, every alert, every rejection and duplicate count, on one simulated fleet."""

from __future__ import annotations

import copy
import uuid
from dataclasses import astuple

import numpy as np
import pytest

from actors.alerting import DeviceAlerts
from actors.device import BatchRejected, DeviceActor, PreparedBatch, accept_many
from algorithms.evaluator import EvaluatorState, RuleState
from algorithms.sensors import spec_for
from storage.devices import DeviceInfo
from storage.readings import StoredReadings

US = 1_000_000
T0_US = 1_800_000_000 * US
EMPTY = StoredReadings(np.zeros(0, np.int64), np.zeros(0))


# Settings some devices' people chose: tighter limits, rise and fall on, a duration, quiet
# hours across midnight in a zone (never for urgent rules), a short signal-loss limit.
QUIET = [{"start_min": 1200, "end_min": 480, "weekdays": [0, 1, 2, 3, 4, 5, 6]}]
CUSTOM = {
    "glucose": [
        {"kind": "high", "threshold": 180, "duration_s": 300, "realert_s": 600, "quiet": QUIET},
        {"kind": "low", "threshold": 85, "hysteresis": 0, "quiet": QUIET},
        {"kind": "rise", "enabled": True, "threshold": 2},
        {"kind": "fall", "enabled": True, "threshold": 2},
        {"kind": "signal_loss", "threshold": 10},
    ]
}


def fleet(devices: int, seed: int) -> list[DeviceActor]:
    """Mostly glucose devices, a quarter temperature; every third glucose device with its
    person's own settings, in one of three time zones."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["glucose", "glucose", "glucose", "temperature"], devices)
    out = [DeviceActor(DeviceInfo(uuid.uuid4(), uuid.uuid4(), str(k), 60), EMPTY) for k in kinds]
    for d, actor in enumerate(out):
        if d % 3 == 1 and actor.info.kind == "glucose":
            actor.alerts.set_rules(CUSTOM, ("UTC", "Europe/Paris", "America/New_York")[d % 3])
    return out


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


def batches_at(
    step: int, step_min: int, truth: np.ndarray, rng: np.random.Generator
) -> list[tuple]:
    """What each device sends at this step: mostly its one new reading; sometimes also the
    previous one again, a late one out of order, a repeated time, an invalid value, or
    nothing (and a device now and then sends a second batch in the same call)."""
    out = []
    for d in range(truth.shape[0]):
        minute = step * step_min
        ts = [T0_US + minute * 60 * US + d]
        values = [float(truth[d, step])]
        roll = rng.random()
        if roll < 0.03 or (d % 20 == 7 and 20 <= minute < 45 and minute != 40):
            continue
        if d % 20 == 7 and minute == 40:  # silent since minute 20: a reading 21 minutes old
            ts, values = [T0_US + 19 * 60 * US + 30 * US + d], [float(truth[d, 19 // step_min])]
        if roll < 0.06 and step:
            ts.append(ts[0] - step_min * 60 * US)  # re-sent
            values.append(float(truth[d, step - 1]))
        elif roll < 0.08 and step > 3:
            ts.insert(0, ts[0] - step_min * 150 * US)  # a late one, between two stored ones
            values.insert(0, float(truth[d, step - 3]))
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


def run_both(devices: int, minutes: int, seed: int, step_min: int = 1) -> int:
    """Run the fleet through both paths; returns the alert changes seen (all identical)."""
    one_by_one = fleet(devices, seed)
    together = copy.deepcopy(one_by_one)
    truth = levels(one_by_one, minutes // step_min, seed)
    rng = np.random.default_rng(seed + 1)
    alerts = 0
    for step in range(minutes // step_min):
        now_us = T0_US + step * step_min * 60 * US + 5 * US
        sent = batches_at(step, step_min, truth, rng)
        expected = []
        for d, ts, values, history in sent:
            try:
                expected.append(one_by_one[d].accept(ts, values, now_us, now_us, history))
            except BatchRejected as rejected:
                expected.append(rejected)
        got = accept_many([(together[d], ts, v, now_us, h) for d, ts, v, h in sent], now_us)
        if step % 10 == 9:  # people acknowledge and snooze, and the clock ticks
            for actors in (one_by_one, together):
                people_act(actors, step, now_us / US)
        assert [summary(g) for g in got] == [summary(e) for e in expected], step
        for a, b in zip(one_by_one, together, strict=True):
            assert a.alerts.state_dict() == b.alerts.state_dict()  # filter, evaluator
            assert [w.tolist() for w in a.window] == [w.tolist() for w in b.window]
        alerts += sum(len(e.ops) for e in expected if isinstance(e, PreparedBatch))
    return alerts


def people_act(actors: list[DeviceActor], minute: int, now_s: float) -> None:
    for d, actor in enumerate(actors):
        if d % 5 == minute % 5:
            for rule in list(actor.alerts.open):
                actor.alerts.acknowledge(rule)
        if d % 7 == minute % 7 and actor.info.kind == "glucose":
            actor.alerts.snooze("high", now_s + 900 if minute % 20 == 9 else None)
        actor.alerts.tick(now_s)


def test_a_small_fleet_gives_the_same_results_both_ways() -> None:
    assert run_both(devices=40, minutes=60, seed=7) > 10  # alerts fired, repeated, cleared


@pytest.mark.slow
def test_a_thousand_devices_over_an_hour_give_the_same_results_both_ways() -> None:
    """Readings every 5 minutes, as most CGMs send them (12 each: the per-device path the
    arrays are compared with costs most of the time, and CI's budget is shared)."""
    assert run_both(devices=1000, minutes=60, seed=12, step_min=5) > 100


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


def test_a_device_whose_alerting_fails_costs_no_other_device_its_alerts() -> None:
    """A corrupt alert state (notified at no recorded time) makes the rules fail for that
    device; the devices evaluated together with it take the per-device path, so all get what
    ``accept`` gives: the others their alerts, that one its readings, no alerts, state kept."""
    one_by_one = fleet(6, seed=3)
    for actor in one_by_one:
        actor.alerts = DeviceAlerts("glucose")
        actor.info = DeviceInfo(actor.info.id, actor.info.profile_id, "glucose", 60)
        actor.spec = spec_for("glucose")
    corrupt = EvaluatorState(rules={"high": RuleState(on=True, active=True, notified=True)})
    one_by_one[2].alerts.evaluator = corrupt
    together = copy.deepcopy(one_by_one)
    now = T0_US
    sent = [(np.array([now - d]), np.array([300.0 if d == 2 else 50.0])) for d in range(6)]
    expected = [a.accept(ts, v, now, now) for a, (ts, v) in zip(one_by_one, sent, strict=True)]
    got = accept_many(
        [(a, ts, v, now, False) for a, (ts, v) in zip(together, sent, strict=True)], now
    )
    assert [summary(g) for g in got] == [summary(e) for e in expected]
    assert [len(p.ops) for p in got] == [2, 2, 0, 2, 2, 2]  # low and urgent low; none
    assert together[2].alerts.evaluator == corrupt and together[2].window_size == 1
