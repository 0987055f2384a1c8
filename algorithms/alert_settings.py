"""Checks a person's alert settings against the clinical rules, before anything is stored.

The rules live here, beside the alert rules themselves, so they are tested directly; the API
only turns each :class:`~algorithms.validation.Problem` into a 422 item. A problem's
``index`` is the rule's position in the sensor's list (``None``: the list as a whole, as for
thresholds out of order) and ``field`` the setting at fault (``None``: the rule as a whole);
a quiet period's problem names the period and, when one is at fault, its field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from algorithms.rules import (
    KIND_SPECS,
    URGENT_LOW_MGDL,
    QuietPeriod,
    Rule,
    RuleKind,
    effective_rules,
)
from algorithms.sensors import SensorKind, spec_for
from algorithms.validation import Problem

RATE_RANGE = (0.5, 10.0)  # mg/dL/min
SIGNAL_LOSS_RANGE = (5.0, 1440.0)  # minutes
_DAY_MIN = 1440
_WEEK_MIN = 7 * _DAY_MIN


@dataclass(frozen=True, slots=True)
class QuietInput:
    """A quiet period as the person gives it: local ``HH:MM`` times (``24:00`` allowed)."""

    start: str
    end: str
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)


@dataclass(frozen=True, slots=True)
class RuleInput:
    """One rule as the person gives it; ``None`` keeps the default."""

    kind: RuleKind
    threshold: float | None = None
    enabled: bool | None = None
    realert_min: float | None = None
    duration_min: float | None = None
    quiet: tuple[QuietInput, ...] = field(default_factory=tuple)


def minutes(hhmm: str) -> int:
    """Minutes after midnight of ``HH:MM``."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def hhmm(minutes: int) -> str:
    """``HH:MM`` of minutes after midnight (1440 is ``24:00``)."""
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def threshold_range(kind: RuleKind, sensor: SensorKind) -> tuple[float, float] | None:
    """The thresholds a rule may be set to (``None``: it takes no threshold)."""
    if kind in (RuleKind.RISE, RuleKind.FALL):
        return RATE_RANGE
    if kind is RuleKind.SIGNAL_LOSS:
        return SIGNAL_LOSS_RANGE
    if kind is RuleKind.SENSOR_PROBLEM:
        return None
    spec = spec_for(sensor)
    return spec.min_value, spec.max_value


def _week_minutes(q: QuietPeriod) -> set[int]:
    out: set[int] = set()
    length = (q.end_min - q.start_min) % _DAY_MIN or _DAY_MIN
    for day in q.weekdays:
        start = day * _DAY_MIN + q.start_min
        out.update((start + m) % _WEEK_MIN for m in range(length))
    return out


def _kind_problem(sensor: SensorKind, item: RuleInput, seen: set[RuleKind]) -> str | None:
    if KIND_SPECS[item.kind].sensor not in (sensor, None):
        return f"{item.kind} is not a {sensor} rule"
    if item.kind in seen:
        return f"{item.kind} is listed twice"
    return None


def _setting_problem(sensor: SensorKind, item: RuleInput) -> tuple[str, str] | None:
    """The field and message of the first problem with the rule's enabled/threshold/quiet."""
    kind, spec = item.kind, KIND_SPECS[item.kind]
    if kind is RuleKind.URGENT_LOW:
        if item.enabled is False:
            return "enabled", "urgent low cannot be disabled"
        if item.threshold is not None and item.threshold != URGENT_LOW_MGDL:
            return "threshold", f"urgent low is fixed at {URGENT_LOW_MGDL:g} mg/dL"
    if item.threshold is not None:
        limits = threshold_range(kind, sensor)
        if limits is None:
            return "threshold", f"{kind} has no threshold"
        lo, hi = limits
        if not lo <= item.threshold <= hi:
            return "threshold", (
                f"{kind} threshold {item.threshold:g} {spec.unit} is outside"
                f" {lo:g}-{hi:g} {spec.unit}"
            )
    if item.quiet and spec.urgent:
        return "quiet", f"{kind} is urgent: it always alerts, quiet hours cannot apply"
    return None


QuietProblem = tuple[tuple[int | str, ...], str]
"""Where in the list of periods (the period, and its field when one is at fault), and why."""


def quiet_periods(
    given: tuple[QuietInput, ...],
) -> tuple[tuple[QuietPeriod, ...], QuietProblem | None]:
    """The periods, or the first one that is empty or overlaps an earlier one."""
    periods: list[QuietPeriod] = []
    covered: set[int] = set()
    for j, q in enumerate(given):
        start, end = minutes(q.start), minutes(q.end)
        if start in (end, _DAY_MIN):
            at = (j, "start") if start == _DAY_MIN else (j, "end")
            return (), (at, f"quiet period {j} ({q.start}-{q.end}) is empty")
        try:
            period = QuietPeriod(start, end, tuple(sorted(set(q.weekdays))))
        except ValueError as exc:
            field = "weekdays" if "weekdays" in str(exc) else "start"
            return (), ((j, field), f"quiet period {j} ({q.start}-{q.end}): {exc}")
        week = _week_minutes(period)
        if covered & week:
            return (), ((j,), f"quiet period {j} ({q.start}-{q.end}) overlaps an earlier one")
        covered |= week
        periods.append(period)
    return tuple(periods), None


def _rule(item: RuleInput, periods: tuple[QuietPeriod, ...]) -> Rule:
    return Rule(
        kind=item.kind,
        threshold=item.threshold,
        enabled=item.enabled,
        realert_s=None if item.realert_min is None else item.realert_min * 60,
        duration_s=None if item.duration_min is None else item.duration_min * 60,
        quiet=periods,
    )


def validate_rules(sensor: SensorKind, items: list[RuleInput]) -> tuple[list[Rule], list[Problem]]:
    """The rules of one sensor's list, and a problem per rule that cannot be accepted."""
    seen: set[RuleKind] = set()
    rules: list[Rule] = []
    problems: list[Problem] = []
    for i, item in enumerate(items):
        wrong_kind = _kind_problem(sensor, item, seen)
        if wrong_kind is not None:
            problems.append(Problem(i, "kind", wrong_kind))
            continue
        seen.add(item.kind)
        setting = _setting_problem(sensor, item)
        if setting is not None:
            problems.append(Problem(i, *setting))
            continue
        periods, quiet_problem = quiet_periods(item.quiet)
        if quiet_problem is not None:
            at, message = quiet_problem
            problems.append(Problem(i, "quiet", message, at))
            continue
        try:
            rules.append(_rule(item, periods))
        except ValueError as exc:
            problems.append(Problem(i, None, str(exc)))
    return rules, problems


_ORDER: dict[SensorKind, tuple[tuple[RuleKind, RuleKind, str], ...]] = {
    SensorKind.GLUCOSE: (
        (RuleKind.LOW, RuleKind.HIGH, "low must be below high"),
        (RuleKind.URGENT_LOW, RuleKind.LOW, "low must be at or above urgent low (55 mg/dL)"),
    ),
    SensorKind.TEMPERATURE: (
        (RuleKind.FEVER, RuleKind.HIGH_FEVER, "fever must be below high fever"),
        (RuleKind.HYPOTHERMIA, RuleKind.FEVER, "hypothermia must be below fever"),
    ),
}


def order_problems(sensor: SensorKind, rules: tuple[Rule, ...]) -> list[Problem]:
    """Thresholds that must keep their order (on the effective rules, defaults included)."""
    t = {r.kind: float(r.threshold or 0.0) for r in rules}
    problems: list[Problem] = []
    for lower, upper, msg in _ORDER.get(sensor, ()):
        if lower in t and upper in t:
            too_high = t[lower] > t[upper] if lower is RuleKind.URGENT_LOW else t[lower] >= t[upper]
            if too_high:
                detail = f"{msg} ({lower} {t[lower]:g}, {upper} {t[upper]:g})"
                problems.append(Problem(None, None, detail))
    return problems


def validate_settings(
    given: dict[SensorKind, list[RuleInput]],
) -> tuple[dict[str, list[dict[str, Any]]], dict[SensorKind, list[Problem]]]:
    """The rules to store (by sensor, as JSON-ready dicts) and every problem, by sensor;
    store only when there are none."""
    stored: dict[str, list[dict[str, Any]]] = {}
    problems: dict[SensorKind, list[Problem]] = {}
    for sensor in SensorKind:
        rules, found = validate_rules(sensor, given.get(sensor, []))
        stored[str(sensor)] = [r.to_dict() for r in rules]
        found += order_problems(sensor, effective_rules(stored, sensor))
        if found:
            problems[sensor] = found
    return stored, problems
