"""A device's alerting: stream algorithm, rule evaluator and the alerts it has open.

Plain Python, owned by a ``DeviceActor``. Each batch of new readings newer than the stream's
head runs through the sensor's stream algorithm (glucose: Kalman filter, trend, 20-minute
prediction; temperature: patch-off detection, skin-to-core, smoothing) and the evaluator;
the evaluator's events become :class:`storage.alerts.AlertOp` rows, written with the readings
in one transaction together with the state below, so a restarted shard continues exactly
where the committed state left off.

The state is not written with every reading: a batch whose readings only extend the stream
(newer than every stored reading, all evaluated) and change no alert episode leaves the
stored state as it is, for at most :data:`STATE_EVERY_S` of the shard's time and
:data:`STATE_SPAN_US` of the readings' time. The written state records the newest reading
stored with it (``through_us``); a restarted shard runs the readings after it through the
stream algorithm and the evaluator again (:meth:`DeviceAlerts.replay`), which gives the
state it had in memory: the stream's state and each rule's last value are the readings'
own, and the episodes are the written ones, since any change to them is written at once.
"""

from __future__ import annotations

import logging
import math
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

log = logging.getLogger(__name__)

STATE_VERSION = 1
# How long a device's stored state may lag its readings (see the module's docstring): at
# most this many seconds of the shard's time, and this span of the readings' own times (a
# restarted shard replays at most that much; the window it loads holds far more, KEEP_US).
STATE_EVERY_S = 60.0
STATE_SPAN_US = 10 * 60 * 1_000_000


@dataclass(slots=True)  # not frozen (its __init__ is 3 times as dear): one per batch, never changed
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
    return x if math.isfinite(x) else None  # math's: 0.05 us on a float, numpy's 1 us


class DeviceAlerts:
    def __init__(self, kind: SensorKind | str, context: AlertContext | None = None) -> None:
        ctx = context or AlertContext()
        self.kind = SensorKind(kind)
        self.tz: str = ctx.timezone
        self.rules = effective_rules(ctx.rules, self.kind)
        saved = ctx.state if ctx.state and ctx.state.get("v") == STATE_VERSION else {}
        # The state as last handed to the database (None: unknown, so the next is written),
        # its episodes (None: the next batch writes the state whatever it changed), when
        # (monotonic seconds) and the newest reading stored with it.
        self._stored_state: dict[str, Any] | None = ctx.state
        self._stored_key: tuple[Any, ...] | None = None
        self._stored_at = -math.inf
        through = saved.get("through_us")
        self.written_through_us: int | None = int(through) if through is not None else None
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
        self._stored_key = None  # readings replayed from here on would meet these rules

    def use_body_site(self, site: str) -> None:
        """A temperature device sits at ``site`` from its next readings on: core temperature
        is its skin temperature plus that site's offset (``algorithms.temperature``)."""
        offset = core_offset_c(site)
        if offset != self.temperature.offset_c:
            self.temperature = replace(self.temperature, offset_c=offset)
            self._stored_key = None  # as for new rules: readings before it keep the old site

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

    def state_to_write(
        self, through_us: int | None, replayable: bool, now_s: float
    ) -> dict[str, Any] | None:
        """The state to write with a batch (or a tick), else None.

        ``through_us``: the device's newest stored reading once this batch is stored;
        ``replayable``: the batch's readings only extend the stream and were all evaluated
        (:attr:`actors.device.PreparedBatch.replayable`); ``now_s``: monotonic seconds. None
        when nothing changed, or when the batch is replayable, changed no episode, and the
        last write is recent (module docstring); else the state with ``through_us``.
        Writes are committed in the order they are handed over; a write that is not made
        must be followed by :meth:`restore`."""
        key = evaluator.episode_key(self.evaluator)
        if (
            replayable
            and key == self._stored_key
            and through_us is not None
            and self.written_through_us is not None
            and now_s - self._stored_at < STATE_EVERY_S
            and through_us - self.written_through_us <= STATE_SPAN_US
        ):
            return None
        state = self.state_dict()
        if through_us is not None:
            state["through_us"] = through_us
        if state == self._stored_state:
            return None
        self._stored_state = state
        self._stored_key = key
        self._stored_at = now_s
        self.written_through_us = through_us
        return state

    def replay(self, ts_s: np.ndarray, values: np.ndarray) -> None:
        """The readings stored after the written state (``written_through_us``), sorted and
        unique, run through the stream algorithm and the evaluator again when a shard loads
        the device: the stream's state and the rules' last values become theirs, the
        episodes stay as written (module docstring). No alert is fired or recorded."""
        before = self.snapshot()
        try:
            self.on_readings(ts_s, values, float(ts_s[-1]), float(ts_s[-1]))
        except Exception:  # the written state then, as before states lagged
            log.exception("replaying %d readings failed", ts_s.size)
            self.restore(before)
            return
        self.evaluator = evaluator.latest_of(before.evaluator, self.evaluator)
        self.open, self.acked = dict(before.open), set(before.acked)

    def snapshot(self) -> _Snapshot:
        return _Snapshot(self.evaluator, self.stream, dict(self.open), frozenset(self.acked))

    def restore(self, snap: _Snapshot) -> None:
        self.evaluator, self.stream = snap.evaluator, snap.stream
        self.open, self.acked = dict(snap.open), set(snap.acked)
        self._stored_state = None  # a write may have been dropped: write the next state
        self._stored_key = None

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
