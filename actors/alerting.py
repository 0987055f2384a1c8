"""A device's alerting: stream algorithm, rule evaluator and the alerts it has open.

Plain Python, owned by a ``DeviceActor``. Each batch of new readings newer than the stream's
head runs through the sensor's stream algorithm (glucose: Kalman filter, trend, 20-minute
prediction; temperature: patch-off detection, skin-to-core, smoothing) and the evaluator;
the evaluator's events become :class:`storage.alerts.AlertOp` rows, written with the readings
in one transaction together with the state below, so a restarted shard continues exactly
where the committed state left off.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from algorithms import evaluator
from algorithms.evaluator import (
    AlertEvent,
    AlertInputs,
    EvaluatorState,
    EventType,
    evaluate_latest,
)
from algorithms.glucose_stream import process_glucose, process_glucose_latest
from algorithms.glucose_stream import state_from_dict as glucose_state_from_dict
from algorithms.rules import RuleKind, Signal, effective_rules
from algorithms.sensors import SensorKind
from algorithms.smoothing import KalmanStates
from algorithms.temperature import (
    TemperatureParams,
    TemperatureState,
    core_offset_c,
    process_temperature,
)
from storage.alerts import AlertContext, AlertOp

STATE_VERSION = 1


@dataclass(frozen=True, slots=True)
class Live:
    """The newest reading of a batch as the live stream shows it."""

    ts_s: float
    value: float
    rate_per_min: float | None
    prediction_20: float | None


@dataclass(slots=True)  # not frozen: taken for every batch, and never changed
class _Snapshot:
    evaluator: EvaluatorState
    stream: Any
    open: dict[str, uuid.UUID]
    acked: frozenset[str]


def _num(x: float) -> float | None:
    x = float(x)
    return x if np.isfinite(x) else None


class DeviceAlerts:
    def __init__(self, kind: SensorKind | str, context: AlertContext | None = None) -> None:
        ctx = context or AlertContext()
        self.kind = SensorKind(kind)
        self.tz: str = ctx.timezone
        self.rules = effective_rules(ctx.rules, self.kind)
        saved = ctx.state if ctx.state and ctx.state.get("v") == STATE_VERSION else {}
        # The state as last handed to the database (None: unknown, so the next is written).
        self._stored_state: dict[str, Any] | None = ctx.state
        self.evaluator = EvaluatorState.from_dict(saved.get("evaluator"))
        self.stream: Any = self._stream_from_dict(saved.get("stream"))
        self.open: dict[str, uuid.UUID] = {a.rule: a.id for a in ctx.open_alerts}
        self.acked: set[str] = {a.rule for a in ctx.open_alerts if a.acknowledged}
        self.temperature = TemperatureParams()
        if ctx.body_site is not None:
            self.use_body_site(ctx.body_site)
        for a in ctx.open_alerts:
            if a.snoozed_until_s is not None and a.rule != RuleKind.URGENT_LOW:
                self.evaluator = evaluator.snooze(
                    self.evaluator, RuleKind(a.rule), a.snoozed_until_s
                )

    def _stream_from_dict(self, d: dict | None) -> Any:
        if d is None:
            return None
        if self.kind is SensorKind.GLUCOSE:
            return glucose_state_from_dict(d)
        return TemperatureState.from_dict(d)

    # -- settings and people's actions --------------------------------------------------

    def set_rules(self, stored: dict[str, list[dict]] | None, timezone: str) -> None:
        self.rules = effective_rules(stored, self.kind)
        self.tz = timezone

    def use_body_site(self, site: str) -> None:
        """A temperature device sits at ``site`` from its next readings on: core temperature
        is its skin temperature plus that site's offset (``algorithms.temperature``)."""
        offset = core_offset_c(site)
        if offset != self.temperature.offset_c:
            self.temperature = replace(self.temperature, offset_c=offset)

    def acknowledge(self, rule: str) -> None:
        """No more repeats of the open alert of ``rule`` (a new episode alerts again)."""
        if rule in self.open:
            self.acked.add(rule)

    def snooze(self, rule: str, until_s: float | None) -> None:
        self.evaluator = evaluator.snooze(self.evaluator, RuleKind(rule), until_s)

    # -- state ---------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        stream = None if self.stream is None else self.stream.to_dict()
        return {"v": STATE_VERSION, "evaluator": self.evaluator.to_dict(), "stream": stream}

    def state_to_write(self) -> dict[str, Any] | None:
        """The state if it differs from the one last handed over for writing, else None.
        Writes are committed in the order they are handed over, so the stored state ends
        equal to this one; a write that is not made must be followed by :meth:`restore`."""
        state = self.state_dict()
        if state == self._stored_state:
            return None
        self._stored_state = state
        return state

    def snapshot(self) -> _Snapshot:
        return _Snapshot(self.evaluator, self.stream, dict(self.open), frozenset(self.acked))

    def restore(self, snap: _Snapshot) -> None:
        self.evaluator, self.stream = snap.evaluator, snap.stream
        self.open, self.acked = dict(snap.open), set(snap.acked)
        self._stored_state = None  # a write may have been dropped: write the next state

    @property
    def head_s(self) -> float | None:
        return self.evaluator.last_reading_s

    # -- evaluation ----------------------------------------------------------------------

    def on_readings(
        self, ts_s: np.ndarray, values: np.ndarray, now_s: float, received_s: float
    ) -> tuple[list[AlertOp], Live | None]:
        """New readings (sorted, unique); only those after the stream's head are evaluated."""
        head = self.head_s
        if head is not None:
            newer = ts_s > head
            ts_s, values = ts_s[newer], values[newer]
        if ts_s.size == 0:
            return [], None
        if self.kind is SensorKind.GLUCOSE:
            g, self.stream = process_glucose(ts_s, values, self.stream)
            inputs = AlertInputs(
                ts_s=ts_s,
                glucose_mgdl=g.alert_mgdl,
                glucose_rate_mgdl_per_min=g.rate_mgdl_per_min,
                glucose_pred_20_mgdl=g.pred_20_mgdl,
            )
            live = Live(
                float(ts_s[-1]),
                float(values[-1]),
                _num(g.rate_mgdl_per_min[-1]),
                _num(g.pred_20_mgdl[-1]),
            )
        else:
            t, self.stream = process_temperature(ts_s, values, self.stream, params=self.temperature)
            inputs = AlertInputs(ts_s=ts_s, core_c=t.core_c, sensor_problem=t.patch_off)
            live = Live(float(ts_s[-1]), float(values[-1]), _num(t.rate_c_per_min[-1]), None)
        self.evaluator, events = evaluator.evaluate(
            self.rules, self.evaluator, inputs, now_s=now_s, tz=self.tz
        )
        return self._ops(events, now_s, received_s), live

    def tick(self, now_s: float) -> list[AlertOp]:
        self.evaluator, events = evaluator.tick(self.rules, self.evaluator, now_s=now_s, tz=self.tz)
        return self._ops(events, now_s, now_s)

    def _ops(self, events: list[AlertEvent], now_s: float, received_s: float) -> list[AlertOp]:
        ops: list[AlertOp] = []
        for e in events:
            rule = str(e.rule)
            op = AlertOp(
                type=str(e.type),
                alert_id=self.open.get(rule) or uuid.uuid4(),
                rule=rule,
                severity=str(e.severity),
                value=e.value,
                threshold=e.threshold,
                reading_ts_s=e.ts_s,
                received_s=received_s,
                decided_s=now_s,
            )
            if e.type is EventType.FIRED:
                if rule in self.open:  # a lost clear: close the old one first
                    ops.append(replace(op, type=str(EventType.CLEARED)))
                op = replace(op, alert_id=uuid.uuid4())
                self.open[rule] = op.alert_id
                self.acked.discard(rule)
            elif e.type is EventType.REPEATED:
                if rule in self.acked:
                    continue
                if rule not in self.open:  # state from before alerts were stored
                    op = replace(op, type=str(EventType.FIRED))
                    self.open[rule] = op.alert_id
            else:
                if self.open.pop(rule, None) is None:
                    continue
                self.acked.discard(rule)
            ops.append(op)
        return ops


def glucose_latest(
    alerts: Sequence[DeviceAlerts],
    ts_s: np.ndarray,
    values: np.ndarray,
    now_s: float,
    received_s: Sequence[float],
) -> list[tuple[list[AlertOp], Live]]:
    """:meth:`DeviceAlerts.on_readings` of one new reading each (newer than the stream's
    head) for many glucose devices, with the same results: the filter, prediction and rules
    of all of them computed as one set of arrays (``algorithms``' ``*_latest`` functions),
    then each device's new state and alerts handed back to it. Nothing changes if it raises."""
    g, streams = process_glucose_latest(
        ts_s, values, KalmanStates.gather([a.stream for a in alerts])
    )
    signals = {
        Signal.GLUCOSE: g.alert_mgdl,
        Signal.GLUCOSE_RATE: g.rate_mgdl_per_min,
        Signal.GLUCOSE_PRED_20: g.pred_20_mgdl,
    }
    states, events = evaluate_latest(
        [a.rules for a in alerts],
        [a.evaluator for a in alerts],
        ts_s,
        signals,
        now_s=now_s,
        tzs=[a.tz for a in alerts],
    )
    columns = zip(
        alerts,
        streams.scatter(),
        states,
        events,
        zip(ts_s.tolist(), values.tolist(), strict=True),
        zip(g.rate_mgdl_per_min.tolist(), g.pred_20_mgdl.tolist(), strict=True),
        received_s,
        strict=True,
    )
    out = []
    for a, stream, state, device_events, (t, v), (rate, pred), rx in columns:
        a.stream, a.evaluator = stream, state
        out.append((a._ops(device_events, now_s, rx), Live(t, v, _num(rate), _num(pred))))
    return out
