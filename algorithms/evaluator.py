"""One alert evaluator for every rule kind: readings in, state and events out.

``evaluate`` runs a batch of readings (sorted by time, newer than the last one evaluated)
through every enabled rule; ``tick`` runs from a clock, for signal loss and for alerts that
are due (re-alerts, alerts held back by quiet hours or a snooze) when no reading comes.
Both are pure: the caller keeps the :class:`EvaluatorState` (``to_dict`` is JSON-safe).

Per rule, an alert episode goes: condition holds (with hysteresis: it stops holding only
once the value is ``hysteresis`` back past the threshold) for ``duration_s`` -> FIRED at the
first reading where notifying is allowed (enabled, not in quiet hours unless urgent, not
snoozed, not older than ``max_alert_age_s``) -> REPEATED at most every ``realert_s`` ->
CLEARED when the condition stops holding (only if FIRED was sent). So an episode fires once,
and between two notifications of one rule there is either a clear or a re-alert interval.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

import numpy as np

from algorithms.episodes import sustained
from algorithms.localtime import TimeZone
from algorithms.rules import Rule, RuleKind, Severity, Signal
from algorithms.series import forward_fill_state, runs

MAX_ALERT_AGE_S = 15 * 60.0


class EventType(StrEnum):
    FIRED = "fired"
    REPEATED = "repeated"
    CLEARED = "cleared"


@dataclass(frozen=True, slots=True)
class AlertEvent:
    rule: RuleKind
    type: EventType
    severity: Severity
    ts_s: float
    value: float | None
    threshold: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "rule": str(self.rule),
            "type": str(self.type),
            "severity": str(self.severity),
            "ts_s": self.ts_s,
            "value": self.value,
            "threshold": self.threshold,
        }


@dataclass(frozen=True, slots=True)
class RuleState:
    on: bool = False  # condition latched (hysteresis)
    on_since_s: float | None = None  # when the latched condition started
    active: bool = False  # condition has held for duration_s: an alert episode is open
    notified: bool = False  # FIRED was sent for the open episode
    last_notified_s: float | None = None
    last_value: float | None = None
    snoozed_until_s: float | None = None


_DEFAULT_RULE_STATE = RuleState()
_RULE_FIELDS = tuple(f.name for f in fields(RuleState))


def _rule_dict(rs: RuleState) -> dict[str, Any]:
    """``asdict`` of a rule state (its fields are plain values), without its deep copy: the
    state is written for every batch."""
    return {name: getattr(rs, name) for name in _RULE_FIELDS}


class EvaluatorState:
    """Each rule's state by kind (rules still in their initial state left out) and the time
    of the last reading evaluated. Immutable: every change makes a new one.

    :func:`evaluate_latest` keeps the states of a device's value rules as rows of floats
    (:class:`_StateRows`, the form it computes them in) and makes :class:`RuleState`\\ s of
    them only when something asks for ``rules``: on the per-reading path nothing does, so a
    reading costs no object per rule. Both forms are the same state (``==``)."""

    __slots__ = ("_rows", "_rules", "last_reading_s")

    def __init__(
        self, rules: dict[str, RuleState] | None = None, last_reading_s: float | None = None
    ) -> None:
        self._rules: dict[str, RuleState] | None = {} if rules is None else rules
        self._rows: _StateRows | None = None
        self.last_reading_s = last_reading_s

    @classmethod
    def _of_rows(cls, rows: _StateRows, last_reading_s: float | None) -> EvaluatorState:
        state = cls.__new__(cls)
        state._rules, state._rows, state.last_reading_s = None, rows, last_reading_s
        return state

    @property
    def rules(self) -> dict[str, RuleState]:
        if self._rules is None:
            assert self._rows is not None
            self._rules = self._rows.rule_states()
        return self._rules

    def rule(self, kind: RuleKind | str) -> RuleState:
        rows, key = self._rows, str(kind)
        if self._rules is None and rows is not None:
            at = rows.plan.at.get(key)
            return rows.rest.get(key, _DEFAULT_RULE_STATE) if at is None else rows.state(at)
        return self.rules.get(key, _DEFAULT_RULE_STATE)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, EvaluatorState):
            return NotImplemented
        return self.last_reading_s == other.last_reading_s and self.rules == other.rules

    __hash__ = None  # type: ignore[assignment]  # mutable contents, as the dataclass it was

    def __repr__(self) -> str:
        return f"EvaluatorState(rules={self.rules!r}, last_reading_s={self.last_reading_s!r})"

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe; rules still in their initial state are left out."""
        return {
            "v": 1,
            "last_reading_s": self.last_reading_s,
            "rules": {k: _rule_dict(s) for k, s in self.rules.items() if not _is_default(s)},
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> EvaluatorState:
        if not d:
            return cls()
        return cls(
            rules={k: RuleState(**v) for k, v in d.get("rules", {}).items()},
            last_reading_s=d.get("last_reading_s"),
        )


@dataclass(slots=True)  # not frozen: made for every device and reading, and never changed
class _StateRows:
    """A device's value rules' states as :func:`evaluate_latest` computed them: row ``j`` of
    ``states`` is rule ``plan.kinds[j]`` (columns as :func:`_state_row`); ``rest`` holds the
    other rules' states (signal loss, rules of a signal the device lacks), none initial;
    ``episodic``: whether any row has more than its last value set."""

    plan: _Present
    states: np.ndarray
    rest: dict[str, RuleState]
    episodic: bool  # a row has more than its last value set (see episode_key)

    def state(self, j: int) -> RuleState:
        return _row_state(self.states[j].tolist())

    def rule_states(self) -> dict[str, RuleState]:
        out = dict(self.rest)
        for kind, row in zip(self.plan.kinds, self.states.tolist(), strict=True):
            rs = _row_state(row)
            if not _is_default(rs):
                out[kind] = rs
        return out


@dataclass(frozen=True, slots=True)
class AlertInputs:
    """A batch of readings: timestamps and whichever signals the device produces."""

    ts_s: np.ndarray
    glucose_mgdl: np.ndarray | None = None
    glucose_rate_mgdl_per_min: np.ndarray | None = None
    glucose_pred_20_mgdl: np.ndarray | None = None
    core_c: np.ndarray | None = None
    sensor_problem: np.ndarray | None = None  # bool: patch off, warm-up, ...

    def signal(self, s: Signal) -> np.ndarray | None:
        v = getattr(self, s.value, None) if s is not Signal.NONE else None
        return None if v is None else np.asarray(v, dtype=np.float64)


def snooze(state: EvaluatorState, kind: RuleKind, until_s: float | None) -> EvaluatorState:
    """Hold back a rule's notifications until ``until_s`` (None ends a snooze)."""
    if RuleKind(kind) is RuleKind.URGENT_LOW:
        raise ValueError("urgent low cannot be snoozed")
    rs = replace(state.rule(kind), snoozed_until_s=until_s)
    return EvaluatorState({**state.rules, str(kind): rs}, state.last_reading_s)


def episode_key(state: EvaluatorState) -> tuple[tuple[Any, ...], ...]:
    """What of a state decides alerts to come beyond the latest readings: every rule's
    condition, episode, notification and snooze, without the value it last saw (which every
    reading changes) and the time of the last reading; rules with nothing of that set are
    left out. Two states with the same key differ only in what the readings since then set
    anew (see :func:`latest_of`). The same for both forms of a state; a state kept as rows
    with no episode anywhere in them (the common case) is keyed without a ``RuleState``."""
    rows = state._rows
    if rows is not None and not rows.episodic:
        return _episodes(rows.rest)
    return _episodes(state.rules)


def _episodes(rules: dict[str, RuleState]) -> tuple[tuple[Any, ...], ...]:
    out = []
    for k, rs in sorted(rules.items()):
        episode = (rs.on, rs.on_since_s, rs.active, rs.notified, rs.last_notified_s,
                   rs.snoozed_until_s)  # fmt: skip
        if episode != _NO_EPISODE:
            out.append((k, *episode))
    return tuple(out)


_NO_EPISODE = (False, None, False, False, None, None)


def latest_of(episodes: EvaluatorState, latest: EvaluatorState) -> EvaluatorState:
    """``episodes``' rule episodes with ``latest``'s last reading time and each rule's last
    seen value: the state of a device whose readings since ``episodes`` (run through the
    evaluator again to give ``latest``) changed no episode when they were first evaluated."""
    rules = {}
    for k in sorted(episodes.rules.keys() | latest.rules.keys()):
        last_value = latest.rules.get(k, _DEFAULT_RULE_STATE).last_value
        rs = replace(episodes.rules.get(k, _DEFAULT_RULE_STATE), last_value=last_value)
        if not _is_default(rs):
            rules[k] = rs
    return EvaluatorState(rules, latest.last_reading_s)


def _condition_code(rule: Rule, x: np.ndarray) -> np.ndarray:
    """1 where the condition starts holding, 0 where it stops, -1 in the hysteresis band/NaN."""
    spec, thr, h = rule.spec, float(rule.threshold or 0.0), float(rule.hysteresis or 0.0)
    v = x * spec.sign
    with np.errstate(invalid="ignore"):
        if spec.below:
            on = v <= thr if spec.inclusive else v < thr
            off = v > thr + h if h > 0 else ~on
        else:
            on = v >= thr if spec.inclusive else v > thr
            off = v < thr - h if h > 0 else ~on
    code = np.full(v.shape, -1, dtype=np.int8)
    code[off & np.isfinite(v)] = 0
    code[on] = 1
    return code


def _allowed(
    rule: Rule, rs: RuleState, ts: np.ndarray, now_s: float, tz: TimeZone, max_age_s: float
) -> np.ndarray:
    ok = ts >= now_s - max_age_s
    if rs.snoozed_until_s is not None:
        ok &= ts >= rs.snoozed_until_s
    return np.asarray(ok & ~rule.quiet_mask(ts, tz))


def _notify(
    rule: Rule,
    rs: RuleState,
    ts: np.ndarray,
    vals: np.ndarray,
    allowed: np.ndarray,
    events: list[AlertEvent],
) -> RuleState:
    """FIRED/REPEATED events over readings that all belong to one open alert episode."""
    idx = np.flatnonzero(allowed)
    if idx.size == 0:
        return rs
    notified, last = rs.notified, rs.last_notified_s
    thr, sev, realert = float(rule.threshold or 0.0), rule.severity, float(rule.realert_s or 1)
    allowed_ts = ts[idx]
    k = 0
    while True:  # idx is not empty; ends when no allowed reading is due to (re)notify
        if notified:
            assert last is not None
            k = int(np.searchsorted(allowed_ts, last + realert, side="left"))
            if k >= idx.size:
                break
        i = int(idx[k])
        kind = EventType.REPEATED if notified else EventType.FIRED
        events.append(AlertEvent(rule.kind, kind, sev, float(ts[i]), _num(vals[i]), thr))
        notified, last = True, float(ts[i])
    return replace(rs, notified=notified, last_notified_s=last)


def _num(x: float) -> float | None:
    return float(x) if np.isfinite(x) else None


def _value_rule(
    rule: Rule,
    rs: RuleState,
    ts: np.ndarray,
    x: np.ndarray,
    now_s: float,
    tz: TimeZone,
    max_age_s: float,
    events: list[AlertEvent],
) -> RuleState:
    code = _condition_code(rule, x)
    if not (rs.on or rs.active or (code == 1).any()):
        # The usual batch: the condition neither holds nor starts holding, so no episode runs
        # and nothing fires or clears; what the full path below gives for it, without its
        # per-rule array work.
        return replace(
            rs, on=False, on_since_s=None, active=False, last_value=_last_finite(x, rs.last_value)
        )
    latched = forward_fill_state(code, rs.on)
    active, since = sustained(
        ts, latched, float(rule.duration_s or 0.0), since_s=rs.on_since_s if rs.on else None
    )
    allowed = _allowed(rule, rs, ts, now_s, tz, max_age_s)
    starts, ends = runs(active)
    n = ts.size
    if rs.active and (starts.size == 0 or starts[0] != 0):
        rs = _clear(rule, rs, float(ts[0]), _num(x[0]), events)
    for s, e in zip(starts.tolist(), ends.tolist(), strict=True):
        if not (s == 0 and rs.active):
            rs = replace(rs, active=True, notified=False, last_notified_s=None)
        rs = _notify(rule, rs, ts[s:e], x[s:e], allowed[s:e], events)
        if e < n:
            rs = _clear(rule, rs, float(ts[e]), _num(x[e]), events)
    return replace(
        rs,
        on=bool(latched[-1]),
        on_since_s=since,
        active=bool(active[-1]),
        last_value=_last_finite(x, rs.last_value),
    )


def _last_finite(x: np.ndarray, before: float | None) -> float | None:
    """The batch's last finite value; ``before`` when it has none."""
    finite = np.flatnonzero(np.isfinite(x))
    return _num(x[finite[-1]]) if finite.size else before


def _clear(
    rule: Rule, rs: RuleState, ts: float, value: float | None, events: list[AlertEvent]
) -> RuleState:
    if rs.notified:
        thr = float(rule.threshold or 0.0)
        events.append(AlertEvent(rule.kind, EventType.CLEARED, rule.severity, ts, value, thr))
    return replace(rs, active=False, notified=False, last_notified_s=None)


def _signal_loss(
    rule: Rule,
    rs: RuleState,
    last_reading_s: float | None,
    now_s: float,
    tz: TimeZone,
    events: list[AlertEvent],
) -> RuleState:
    if last_reading_s is None:
        return rs
    minutes = (now_s - last_reading_s) / 60.0
    lost = minutes >= float(rule.threshold or 0.0)
    if not lost:
        return _clear(rule, rs, last_reading_s, None, events) if rs.active else rs
    if not rs.active:
        rs = replace(rs, active=True, on=True, on_since_s=last_reading_s, notified=False)
    ts = np.array([now_s])
    allowed = _allowed(rule, rs, ts, now_s, tz, MAX_ALERT_AGE_S)
    return _notify(rule, rs, ts, np.array([minutes]), allowed, events)


def _rule_states(
    state: EvaluatorState, updates: dict[str, RuleState], last_reading_s: float | None
) -> EvaluatorState:
    merged = {**state.rules, **updates}
    return EvaluatorState(_without_initial(merged), last_reading_s)


def _without_initial(rules: dict[str, RuleState]) -> dict[str, RuleState]:
    """The rules whose state is not the initial one (a state keeps no others)."""
    return {k: v for k, v in rules.items() if not _is_default(v)}


def _is_default(rs: RuleState) -> bool:
    """``rs == RuleState()``, answered without comparing every field when a value is set."""
    return rs.last_value is None and rs == _DEFAULT_RULE_STATE


def evaluate(
    rules: tuple[Rule, ...] | list[Rule],
    state: EvaluatorState,
    inputs: AlertInputs,
    *,
    now_s: float,
    tz: TimeZone = 0,
    max_alert_age_s: float = MAX_ALERT_AGE_S,
) -> tuple[EvaluatorState, list[AlertEvent]]:
    """Run a batch through every enabled rule.

    Readings not newer than the last one evaluated are ignored (a backfill below the stream's
    head is stored and counted in statistics, but it cannot re-open past alerts). Readings
    older than ``now_s - max_alert_age_s`` update the state without notifying.
    """
    ts_all = np.asarray(inputs.ts_s, dtype=np.float64)
    order = np.argsort(ts_all, kind="stable")
    ts = ts_all[order]
    keep = ts > state.last_reading_s if state.last_reading_s is not None else np.ones_like(ts, bool)
    ts = ts[keep]
    events: list[AlertEvent] = []
    updates: dict[str, RuleState] = {}
    for rule in rules:
        if not rule.enabled or rule.kind is RuleKind.SIGNAL_LOSS:
            continue
        x = inputs.signal(rule.spec.signal)
        if x is None or ts.size == 0:
            continue
        x = x[order][keep]
        rs = state.rule(rule.kind)
        updates[str(rule.kind)] = _value_rule(rule, rs, ts, x, now_s, tz, max_alert_age_s, events)
    last = state.last_reading_s
    if ts.size:
        last = float(ts[-1]) if last is None else max(last, float(ts[-1]))
    state = _rule_states(state, updates, last)
    for rule in rules:
        if rule.enabled and rule.kind is RuleKind.SIGNAL_LOSS:
            rs = _signal_loss(rule, state.rule(rule.kind), last, now_s, tz, events)
            state = _rule_states(state, {str(rule.kind): rs}, last)
    events.sort(key=lambda e: e.ts_s)
    return state, events


def tick(
    rules: tuple[Rule, ...] | list[Rule],
    state: EvaluatorState,
    *,
    now_s: float,
    tz: TimeZone = 0,
) -> tuple[EvaluatorState, list[AlertEvent]]:
    """Clock-driven evaluation: signal loss, and open alerts that are due to (re)notify.

    Open value alerts are only re-notified while data is fresh (the last reading is younger
    than the signal-loss limit, 20 minutes by default); after that signal loss speaks.
    """
    events: list[AlertEvent] = []
    updates: dict[str, RuleState] = {}
    loss = next((r for r in rules if r.kind is RuleKind.SIGNAL_LOSS and r.enabled), None)
    fresh_s = 60.0 * float(loss.threshold if loss is not None else 20.0)  # type: ignore[arg-type]
    last = state.last_reading_s
    for rule in rules:
        if not rule.enabled:
            continue
        rs = state.rule(rule.kind)
        if rule.kind is RuleKind.SIGNAL_LOSS:
            updates[str(rule.kind)] = _signal_loss(rule, rs, last, now_s, tz, events)
        elif rs.active and last is not None and now_s - last < fresh_s:
            ts = np.array([now_s])
            allowed = _allowed(rule, rs, ts, now_s, tz, MAX_ALERT_AGE_S)
            vals = np.array([rs.last_value if rs.last_value is not None else np.nan])
            updates[str(rule.kind)] = _notify(rule, rs, ts, vals, allowed, events)
    return _rule_states(state, updates, state.last_reading_s), events


def evaluate_latest(
    rules: Sequence[tuple[Rule, ...] | list[Rule]],
    states: Sequence[EvaluatorState],
    ts_s: np.ndarray,
    signals: Mapping[Signal, np.ndarray],
    *,
    now_s: float,
    tzs: Sequence[TimeZone],
    max_alert_age_s: float = MAX_ALERT_AGE_S,
) -> tuple[list[EvaluatorState], list[list[AlertEvent]]]:
    """:func:`evaluate` of one new reading for each of many devices, as arrays.

    Entry ``i`` is device ``i``: its rules, state, time zone and reading ``ts_s[i]``, which
    must be newer than its ``last_reading_s``; ``signals`` holds every signal the devices
    produce (one value each; a rule whose signal is absent is skipped, as ``evaluate`` skips
    it). The same states and events as ``evaluate`` gives each device alone: each value rule's
    episode step is computed for all (device, rule) pairs together; quiet hours and signal
    loss that is lost or open are left to the per-rule code (rare, and not per reading).
    The states come back as rows (:class:`_StateRows`), and a state given as rows of the same
    rules is read as such: a device's rules cost no object per reading.
    """
    ts = np.asarray(ts_s, dtype=np.float64)
    rows = _LatestRows.gather(rules, states, signals)
    r, t, x = rows.params, ts[rows.device], rows.x
    thr, h, duration, realert = r[:, 0], r[:, 1], r[:, 2], r[:, 3]
    below, inclusive = r[:, 4] == 1.0, r[:, 5] == 1.0
    was_on, since0, was_active = rows.state[:, 0] == 1.0, rows.state[:, 1], rows.state[:, 2] == 1.0
    was_notified, last0, snoozed = rows.state[:, 3] == 1.0, rows.state[:, 4], rows.state[:, 6]
    v = x * r[:, 6]
    with np.errstate(invalid="ignore"):
        on = np.where(
            below, np.where(inclusive, v <= thr, v < thr), np.where(inclusive, v >= thr, v > thr)
        )
        off = np.where(h > 0, np.where(below, v > thr + h, v < thr - h), ~on)
        latched = on | (~(off & np.isfinite(v)) & was_on)
        begin = np.where(was_on & ~np.isnan(since0), since0, t)
        held = latched & (t - begin >= duration)
        allowed = (t >= now_s - max_alert_age_s) & (np.isnan(snoozed) | (t >= snoozed))
    for k in np.flatnonzero(rows.quiet).tolist():
        rule, i = rows.rule(k)
        allowed[k] &= not rule.quiet_mask(t[k : k + 1], tzs[i])[0]
    started = held & ~was_active
    notified0 = np.where(started, False, was_notified)
    last1 = np.where(started, np.nan, last0)
    if (held & allowed & notified0 & np.isnan(last1)).any():  # evaluate's assertion fails
        raise ValueError("an open alert was notified at no recorded time")
    with np.errstate(invalid="ignore"):
        due = held & allowed & (~notified0 | (t >= last1 + realert))
    cleared = was_active & ~held & was_notified
    notified = np.where(held, notified0 | allowed, np.where(was_active, False, was_notified))
    last = np.where(held, np.where(due, t, last1), np.where(was_active, np.nan, last0))
    finite = np.isfinite(x)
    value = np.where(finite, x, rows.state[:, 5])
    new = np.column_stack(
        (latched, np.where(latched, begin, np.nan), held, notified, last, value, snoozed)
    ).astype(np.float64, copy=False)
    events: list[list[AlertEvent]] = [[] for _ in states]
    for k in np.flatnonzero(due | cleared).tolist():
        rule, i = rows.rule(k)
        kind = (
            EventType.CLEARED
            if cleared[k]
            else (EventType.REPEATED if notified0[k] else EventType.FIRED)
        )
        value_k = float(x[k]) if finite[k] else None
        events[i].append(
            AlertEvent(
                rule.kind, kind, rule.severity, float(t[k]), value_k, float(rule.threshold or 0.0)
            )
        )
    return _latest_states(states, ts, rows, new, events, now_s, tzs)


def _latest_states(
    states: Sequence[EvaluatorState],
    ts: np.ndarray,
    rows: _LatestRows,
    new: np.ndarray,
    events: list[list[AlertEvent]],
    now_s: float,
    tzs: Sequence[TimeZone],
) -> tuple[list[EvaluatorState], list[list[AlertEvent]]]:
    """The new states (value rules' rows of ``new``, then signal loss as ``evaluate`` does),
    events sorted. Each state's rows are a copy: a device that stops sending must not keep
    the whole call's array."""
    out = []
    bounds = rows.bounds
    with np.errstate(invalid="ignore"):
        set_ = new[:, [0, 2, 3]].any(axis=1) | ~np.isnan(new[:, [1, 4, 6]]).all(axis=1)
    set_before = np.concatenate(([0], np.cumsum(set_)))[bounds]
    episodic = (set_before[1:] > set_before[:-1]).tolist()
    for i, (state, present, rest, last) in enumerate(
        zip(states, rows.plans, rows.rests, ts.tolist(), strict=True)
    ):
        if state.last_reading_s is not None:
            last = max(state.last_reading_s, last)
        kept = _StateRows(present, new[bounds[i] : bounds[i + 1]].copy(), rest, episodic[i])
        for rule in present.loss:
            rs = kept.rest.get(str(rule.kind), _DEFAULT_RULE_STATE)
            if rs.active or (now_s - last) / 60.0 >= float(rule.threshold or 0.0):
                rs = _signal_loss(rule, rs, last, now_s, tzs[i], events[i])
                kept.rest = _without_initial({**kept.rest, str(rule.kind): rs})
        events[i].sort(key=lambda e: e.ts_s)
        out.append(EvaluatorState._of_rows(kept, last))
    return out, events


@dataclass(frozen=True, slots=True)
class _Plan:
    """What ``evaluate`` does with a device's rules, worked out once per rules tuple: the
    enabled value rules (rule, kind, signal, parameters, quiet hours to look at) and the
    enabled signal-loss rules, in the rules' order; and, per order of the signals a call
    of :func:`evaluate_latest` brings, the rows its devices get (:meth:`present`)."""

    value: tuple[tuple[Rule, str, Signal, tuple[float, ...], bool], ...]
    loss: tuple[Rule, ...]
    _present: dict[tuple[Signal, ...], _Present] = field(
        default_factory=dict, compare=False, repr=False
    )

    def present(self, signals: tuple[Signal, ...]) -> _Present:
        """The value rules whose signal is among ``signals``, as rows."""
        hit = self._present.get(signals)
        if hit is None:
            picked = [v for v in self.value if v[2] in signals]
            n = len(picked)
            hit = _Present(
                kinds=tuple(v[1] for v in picked),
                at={v[1]: j for j, v in enumerate(picked)},
                rules=tuple(v[0] for v in picked),
                params=np.array([v[3] for v in picked], dtype=np.float64).reshape(n, 7),
                signal=np.array([signals.index(v[2]) for v in picked], dtype=np.intp),
                quiet=np.array([v[4] for v in picked], dtype=bool),
                loss=self.loss,
            )
            self._present[signals] = hit
        return hit


@dataclass(frozen=True, slots=True, eq=False)
class _Present:
    """A device's rows in :func:`evaluate_latest`: its value rules whose signal the call
    brings (kind, where in the rows, the rule, its parameters, the signal's place among the
    call's, quiet hours to look at), and its signal-loss rules."""

    kinds: tuple[str, ...]
    at: dict[str, int]
    rules: tuple[Rule, ...]
    params: np.ndarray  # threshold, hysteresis, duration, realert, below, inclusive, sign
    signal: np.ndarray
    quiet: np.ndarray
    loss: tuple[Rule, ...]


_PLANS: dict[int, tuple[object, _Plan]] = {}  # id(rules) -> (rules, kept alive; plan)
_MAX_PLANS = 1 << 16


def _plan(rules: tuple[Rule, ...] | list[Rule]) -> _Plan:
    hit = _PLANS.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    value = tuple(
        (r, str(r.kind), r.spec.signal, _rule_params(r), bool(r.quiet) and not r.spec.urgent)
        for r in rules
        if r.enabled and r.kind is not RuleKind.SIGNAL_LOSS
    )
    plan = _Plan(value, tuple(r for r in rules if r.enabled and r.kind is RuleKind.SIGNAL_LOSS))
    if isinstance(rules, tuple):  # a list may change: worked out again each time
        if len(_PLANS) >= _MAX_PLANS:
            _PLANS.clear()
        _PLANS[id(rules)] = (rules, plan)
    return plan


@dataclass(frozen=True, slots=True)
class _LatestRows:
    """One row per (device, enabled value rule whose signal is present), in the order
    ``evaluate`` runs them: the rule's parameters, its state and the value it sees; per
    device its rows (``plans``, from ``bounds[i]`` to ``bounds[i + 1]``) and its other
    rules' states (``rests``)."""

    plans: list[_Present]
    rests: list[dict[str, RuleState]]
    bounds: list[int]
    device: np.ndarray
    params: np.ndarray
    state: np.ndarray  # on, on_since, active, notified, last_notified, last_value, snoozed
    x: np.ndarray
    quiet: np.ndarray  # rows whose quiet hours must be looked at

    @classmethod
    def gather(
        cls,
        rules: Sequence[tuple[Rule, ...] | list[Rule]],
        states: Sequence[EvaluatorState],
        signals: Mapping[Signal, np.ndarray],
    ) -> _LatestRows:
        order = tuple(signals)
        plans, rests, blocks = [], [], []
        for device_rules, evaluator_state in zip(rules, states, strict=True):
            present = _plan(device_rules).present(order)
            kept = evaluator_state._rows
            if kept is not None and kept.plan is present:  # as the last call left it
                blocks.append(kept.states)
                rests.append(kept.rest)
            else:
                saved = evaluator_state.rules
                rows = [_state_row(saved.get(kind, _DEFAULT_RULE_STATE)) for kind in present.kinds]
                blocks.append(np.array(rows, dtype=np.float64).reshape(len(rows), 7))
                rests.append(
                    _without_initial({k: v for k, v in saved.items() if k not in present.at})
                )
            plans.append(present)
        counts = [len(p.kinds) for p in plans]
        bounds = np.cumsum([0, *counts]).tolist()
        device = np.repeat(np.arange(len(plans)), counts)
        if not device.size:
            empty = np.zeros((0, 7))
            return cls(plans, rests, bounds, device, empty, empty, np.zeros(0), np.zeros(0, bool))
        values = np.array([np.asarray(signals[s], dtype=np.float64) for s in order])
        signal = np.concatenate([p.signal for p in plans])
        return cls(
            plans,
            rests,
            bounds,
            device,
            np.concatenate([p.params for p in plans]),
            np.concatenate(blocks),
            values[signal, device],
            np.concatenate([p.quiet for p in plans]),
        )

    def rule(self, k: int) -> tuple[Rule, int]:
        """Row ``k``'s rule, and its device."""
        i = int(self.device[k])
        return self.plans[i].rules[k - self.bounds[i]], i


def _rule_params(rule: Rule) -> tuple[float, ...]:
    spec = rule.spec
    return (
        float(rule.threshold or 0.0),
        float(rule.hysteresis or 0.0),
        float(rule.duration_s or 0.0),
        float(rule.realert_s or 1),
        1.0 if spec.below else 0.0,
        1.0 if spec.inclusive else 0.0,
        float(spec.sign),
    )


def _state_row(rs: RuleState) -> tuple[float, ...]:
    nan = float("nan")
    return (
        1.0 if rs.on else 0.0,
        nan if rs.on_since_s is None else rs.on_since_s,
        1.0 if rs.active else 0.0,
        1.0 if rs.notified else 0.0,
        nan if rs.last_notified_s is None else rs.last_notified_s,
        nan if rs.last_value is None else rs.last_value,
        nan if rs.snoozed_until_s is None else rs.snoozed_until_s,
    )


def _none(x: float) -> float | None:
    return None if x != x else x


def _row_state(row: list[float]) -> RuleState:
    """The :class:`RuleState` of a row as :func:`_state_row` makes it."""
    on, since, active, notified, last, value, snoozed = row
    return RuleState(
        on == 1.0, _none(since), active == 1.0, notified == 1.0, _none(last), _none(value),
        _none(snoozed),
    )  # fmt: skip
