"""Alert rules: what each kind watches, its defaults, thresholds, schedule and quiet hours.

A :class:`Rule` is the person's setting for one :class:`RuleKind`. Rules are plain frozen
values with ``to_dict``/``from_dict`` so the API can store them as JSON. Urgent low is fixed
at 55 mg/dL and cannot be disabled; urgent kinds pass through quiet hours.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

import numpy as np

from algorithms.localtime import TimeZone, local_weekday_and_minute
from algorithms.sensors import SensorKind
from algorithms.temperature import FEVER_C, HIGH_FEVER_C, HYPOTHERMIA_C

URGENT_LOW_MGDL = 55.0


class RuleKind(StrEnum):
    HIGH = "high"
    LOW = "low"
    URGENT_LOW = "urgent_low"
    URGENT_LOW_SOON = "urgent_low_soon"
    RISE = "rise"
    FALL = "fall"
    SIGNAL_LOSS = "signal_loss"
    SENSOR_PROBLEM = "sensor_problem"
    FEVER = "fever"
    HIGH_FEVER = "high_fever"
    HYPOTHERMIA = "hypothermia"


class Severity(StrEnum):
    WARNING = "warning"
    URGENT = "urgent"


class Signal(StrEnum):
    """Names of the input arrays of :class:`algorithms.evaluator.AlertInputs`."""

    GLUCOSE = "glucose_mgdl"
    GLUCOSE_RATE = "glucose_rate_mgdl_per_min"
    GLUCOSE_PRED_20 = "glucose_pred_20_mgdl"
    CORE = "core_c"
    SENSOR_PROBLEM = "sensor_problem"
    NONE = "none"  # signal loss: watches time, not values


@dataclass(frozen=True, slots=True)
class KindSpec:
    signal: Signal
    below: bool  # alert when the (signed) signal is below the threshold
    inclusive: bool  # the threshold itself alerts
    sign: float  # the signal is multiplied by this first (fall rate: -1)
    urgent: bool
    sensor: SensorKind | None
    unit: str
    threshold: float
    hysteresis: float
    realert_s: float
    duration_s: float
    enabled: bool = True


_G, _T = SensorKind.GLUCOSE, SensorKind.TEMPERATURE
KIND_SPECS: dict[RuleKind, KindSpec] = {
    RuleKind.HIGH: KindSpec(Signal.GLUCOSE, False, True, 1, False, _G, "mg/dL", 250, 15, 7200, 0),
    RuleKind.LOW: KindSpec(Signal.GLUCOSE, True, True, 1, False, _G, "mg/dL", 70, 10, 1800, 0),
    RuleKind.URGENT_LOW: KindSpec(
        Signal.GLUCOSE, True, True, 1, True, _G, "mg/dL", URGENT_LOW_MGDL, 10, 1800, 0
    ),
    RuleKind.URGENT_LOW_SOON: KindSpec(
        Signal.GLUCOSE_PRED_20, True, False, 1, True, _G, "mg/dL", URGENT_LOW_MGDL, 10, 1800, 0
    ),
    RuleKind.RISE: KindSpec(
        Signal.GLUCOSE_RATE, False, True, 1, False, _G, "mg/dL/min", 3, 1, 3600, 0, False
    ),
    RuleKind.FALL: KindSpec(
        Signal.GLUCOSE_RATE, False, True, -1, False, _G, "mg/dL/min", 3, 1, 3600, 0, False
    ),
    RuleKind.SIGNAL_LOSS: KindSpec(Signal.NONE, False, True, 1, False, None, "min", 20, 0, 3600, 0),
    RuleKind.SENSOR_PROBLEM: KindSpec(
        Signal.SENSOR_PROBLEM, False, True, 1, False, None, "", 0.5, 0.0, 3600, 600
    ),
    RuleKind.FEVER: KindSpec(
        Signal.CORE, False, True, 1, False, _T, "°C", FEVER_C, 0.3, 14400, 1800
    ),
    RuleKind.HIGH_FEVER: KindSpec(
        Signal.CORE, False, True, 1, True, _T, "°C", HIGH_FEVER_C, 0.3, 3600, 600
    ),
    RuleKind.HYPOTHERMIA: KindSpec(
        Signal.CORE, True, False, 1, True, _T, "°C", HYPOTHERMIA_C, 0.3, 3600, 900
    ),
}


@dataclass(frozen=True, slots=True)
class QuietPeriod:
    """Quiet from ``start_min`` to ``end_min`` (minutes after local midnight) on ``weekdays``.

    Weekdays are 0 = Monday ... 6 = Sunday and name the day the period starts; an end
    before the start runs past midnight into the next day (22:00-07:00 is ``1320, 420``).
    """

    start_min: int
    end_min: int
    weekdays: tuple[int, ...] = (0, 1, 2, 3, 4, 5, 6)

    def __post_init__(self) -> None:
        if not (0 <= self.start_min < 1440 and 0 <= self.end_min <= 1440):
            raise ValueError("quiet period minutes must be within a day")
        if any(d not in range(7) for d in self.weekdays):
            raise ValueError("weekdays are 0 (Monday) to 6 (Sunday)")

    def contains(self, weekday: np.ndarray, minute: np.ndarray) -> np.ndarray:
        days = np.asarray(self.weekdays)
        if self.start_min <= self.end_min:
            return np.isin(weekday, days) & (minute >= self.start_min) & (minute < self.end_min)
        late = np.isin(weekday, days) & (minute >= self.start_min)
        early = np.isin((weekday - 1) % 7, days) & (minute < self.end_min)
        return late | early


@dataclass(frozen=True, slots=True)
class Rule:
    """One person's setting for one kind; ``None`` fields take the kind's default.

    ``duration_s`` is how long the condition must hold before alerting (for signal loss: the
    minutes without a reading, as ``threshold``); ``realert_s`` is how often an alert still
    standing is repeated.
    """

    kind: RuleKind
    threshold: float | None = None
    enabled: bool | None = None
    hysteresis: float | None = None
    realert_s: float | None = None
    duration_s: float | None = None
    quiet: tuple[QuietPeriod, ...] = ()

    def __post_init__(self) -> None:
        kind = RuleKind(self.kind)
        spec = KIND_SPECS[kind]
        object.__setattr__(self, "kind", kind)
        for name in ("threshold", "enabled", "hysteresis", "realert_s", "duration_s"):
            if getattr(self, name) is None:
                object.__setattr__(self, name, getattr(spec, name))
        object.__setattr__(self, "quiet", tuple(self.quiet))
        if kind is RuleKind.URGENT_LOW and (not self.enabled or self.threshold != URGENT_LOW_MGDL):
            raise ValueError("urgent low is fixed at 55 mg/dL and cannot be disabled")
        if (self.hysteresis or 0) < 0 or (self.realert_s or 0) <= 0 or (self.duration_s or 0) < 0:
            raise ValueError(f"{kind}: hysteresis, realert_s and duration_s must be >= 0")

    @property
    def spec(self) -> KindSpec:
        return KIND_SPECS[self.kind]

    @property
    def severity(self) -> Severity:
        return Severity.URGENT if self.spec.urgent else Severity.WARNING

    def quiet_mask(self, ts_s: np.ndarray, tz: TimeZone) -> np.ndarray:
        """Where this rule's quiet hours hold back notifications (never for urgent kinds)."""
        ts = np.asarray(ts_s, dtype=np.float64)
        if self.spec.urgent or not self.quiet:
            return np.zeros(ts.shape, dtype=bool)
        wd, minute = local_weekday_and_minute(ts, tz)
        out = np.zeros(ts.shape, dtype=bool)
        for period in self.quiet:
            out |= period.contains(wd, minute)
        return out

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["kind"] = str(self.kind)
        d["quiet"] = [asdict(q) | {"weekdays": list(q.weekdays)} for q in self.quiet]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Rule:
        quiet = tuple(
            QuietPeriod(int(q["start_min"]), int(q["end_min"]), tuple(q.get("weekdays", range(7))))
            for q in d.get("quiet", ())
        )
        return cls(
            kind=RuleKind(d["kind"]),
            threshold=d.get("threshold"),
            enabled=d.get("enabled"),
            hysteresis=d.get("hysteresis"),
            realert_s=d.get("realert_s"),
            duration_s=d.get("duration_s"),
            quiet=quiet,
        )


def default_rules(sensor: SensorKind | str) -> tuple[Rule, ...]:
    """Every rule that applies to a sensor kind, with default settings."""
    s = SensorKind(sensor)
    return tuple(Rule(k) for k, spec in KIND_SPECS.items() if spec.sensor in (s, None))


def with_mandatory(
    rules: tuple[Rule, ...] | list[Rule], sensor: SensorKind | str
) -> tuple[Rule, ...]:
    """The rules plus urgent low (for glucose) when the person's list lacks it."""
    out = tuple(rules)
    if SensorKind(sensor) is SensorKind.GLUCOSE and all(
        r.kind is not RuleKind.URGENT_LOW for r in out
    ):
        out += (Rule(RuleKind.URGENT_LOW),)
    return out


def effective_rules(
    stored: dict[str, list[dict[str, Any]]] | None, kind: SensorKind | str
) -> tuple[Rule, ...]:
    """A sensor kind's rules: the clinical defaults, each replaced by the person's setting."""
    sensor = SensorKind(kind)
    by_kind = {r.kind: r for r in default_rules(sensor)}
    for d in (stored or {}).get(str(sensor), []):
        rule = Rule.from_dict(d)
        if rule.kind in by_kind:
            by_kind[rule.kind] = rule
    return with_mandatory(tuple(by_kind.values()), sensor)


__all__ = [
    "KIND_SPECS",
    "URGENT_LOW_MGDL",
    "KindSpec",
    "QuietPeriod",
    "Rule",
    "RuleKind",
    "Severity",
    "Signal",
    "default_rules",
    "effective_rules",
    "with_mandatory",
]
