"""Replay simulator traces reading by reading through the glucose pipeline and the evaluator.

Shared by ``test_simglucose_alerts.py`` and ``bench/algorithms.py``'s report; run directly for
the figures of the report::

    .venv/bin/python tests/algorithms/sim_replay.py
"""

from __future__ import annotations

import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

if __name__ == "__main__":  # allow running as a script from the repo root
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from algorithms.episodes import Episode, find_episodes
from algorithms.evaluator import AlertEvent, AlertInputs, EvaluatorState, EventType, evaluate
from algorithms.glucose_stream import GlucoseStreamParams, process_glucose
from algorithms.rules import Rule, RuleKind, default_rules
from algorithms.series import runs

DATA = Path(__file__).resolve().parents[1] / "data" / "simglucose_traces.npz"
DAY_S = 86_400.0
LOW_KINDS = (RuleKind.LOW, RuleKind.URGENT_LOW, RuleKind.URGENT_LOW_SOON)
URGENT_KINDS = (RuleKind.URGENT_LOW, RuleKind.URGENT_LOW_SOON)


@dataclass(frozen=True)
class Trace:
    name: str
    ts_s: np.ndarray
    bg_mgdl: np.ndarray  # true blood glucose
    cgm_mgdl: np.ndarray  # what the sensor reports

    @property
    def interval_s(self) -> float:
        return float(np.median(np.diff(self.ts_s)))


def load_traces(path: Path = DATA) -> list[Trace]:
    with np.load(path) as z:
        names = [str(n) for n in z["runs"]]
        return [
            Trace(
                n,
                z[f"ts_s_{i}"].astype(np.float64),
                z[f"bg_{i}"].astype(np.float64),
                z[f"cgm_{i}"].astype(np.float64),
            )
            for i, n in enumerate(names)
        ]


def replay(
    trace: Trace,
    rules: tuple[Rule, ...] | None = None,
    params: GlucoseStreamParams | None = None,
    batch: int = 1,
) -> list[AlertEvent]:
    """Feed the trace ``batch`` readings at a time (1: as a device actor receives them)."""
    rules = rules or default_rules("glucose")
    params = params or GlucoseStreamParams()
    gstate = None
    estate = EvaluatorState()
    events: list[AlertEvent] = []
    for i in range(0, trace.ts_s.size, batch):
        ts, g = trace.ts_s[i : i + batch], trace.cgm_mgdl[i : i + batch]
        stream, gstate = process_glucose(ts, g, gstate, params=params)
        inputs = AlertInputs(
            ts,
            glucose_mgdl=stream.alert_mgdl,
            glucose_rate_mgdl_per_min=stream.rate_mgdl_per_min,
            glucose_pred_20_mgdl=stream.pred_20_mgdl,
        )
        estate, ev = evaluate(rules, estate, inputs, now_s=float(ts[-1]), max_alert_age_s=1e12)
        events.extend(ev)
    return events


def genuine_episodes(trace: Trace, level: float = 54.0) -> list[Episode]:
    """Episodes of true BG below ``level`` for >= 15 minutes (consensus definition)."""
    return find_episodes(
        trace.ts_s, trace.bg_mgdl, trace.bg_mgdl < level, interval_s=trace.interval_s
    )


def first_crossing(ts: np.ndarray, g: np.ndarray, level: float, before_s: float) -> float | None:
    """Start of the last run at or below ``level`` that begins no later than ``before_s``."""
    starts, _ = runs(g <= level)
    starts = starts[ts[starts] <= before_s]
    return float(ts[starts[-1]]) if starts.size else None


@dataclass
class Summary:
    episodes: int = 0
    detected: int = 0
    soon_before_crossing: int = 0
    lead_times_min: list[float] | None = None
    bg_lead_times_min: list[float] | None = None
    days: float = 0.0
    false_urgent: int = 0
    false_low: int = 0
    low_free_days: int = 0
    alerts_on_low_free_days: int = 0

    @property
    def median_lead_min(self) -> float:
        return statistics.median(self.lead_times_min) if self.lead_times_min else float("nan")


def analyse(
    traces: list[Trace], params: GlucoseStreamParams | None = None, batch: int = 1
) -> Summary:
    s = Summary(lead_times_min=[], bg_lead_times_min=[])
    for tr in traces:
        events = replay(tr, params=params, batch=batch)
        notify = [e for e in events if e.type is not EventType.CLEARED]
        s.days += (tr.ts_s[-1] - tr.ts_s[0] + tr.interval_s) / DAY_S
        for ep in genuine_episodes(tr):
            s.episodes += 1
            window = (ep.start_s - 3600.0, ep.end_s)
            urgent = [
                e for e in notify if e.rule in URGENT_KINDS and window[0] <= e.ts_s <= window[1]
            ]
            if urgent:
                s.detected += 1
            cross = first_crossing(tr.ts_s, tr.cgm_mgdl, 55.0, ep.end_s)
            bg_cross = first_crossing(tr.ts_s, tr.bg_mgdl, 55.0, ep.end_s)
            soon = [
                e.ts_s
                for e in notify
                if e.rule is RuleKind.URGENT_LOW_SOON and window[0] <= e.ts_s <= window[1]
            ]
            if soon and cross is not None:
                lead = (cross - min(soon)) / 60.0
                s.lead_times_min.append(lead)
                if lead > 0:
                    s.soon_before_crossing += 1
            if soon and bg_cross is not None:
                s.bg_lead_times_min.append((bg_cross - min(soon)) / 60.0)
        # False alerts: fired while true BG did not go below 70 (urgent: within the next 30
        # minutes; low: within 15 minutes either side).
        for e in events:
            if e.type is not EventType.FIRED or e.rule not in LOW_KINDS:
                continue
            if e.rule in URGENT_KINDS:
                m = (tr.ts_s >= e.ts_s) & (tr.ts_s <= e.ts_s + 1800)
                s.false_urgent += bool(tr.bg_mgdl[m].min() >= 70.0)
            else:
                m = (tr.ts_s >= e.ts_s - 900) & (tr.ts_s <= e.ts_s + 900)
                s.false_low += bool(tr.bg_mgdl[m].min() >= 75.0)
        # Days without lows: neither true BG nor the sensor below 70 all day.
        day = np.floor((tr.ts_s - tr.ts_s[0]) / DAY_S)
        for d in np.unique(day):
            m = day == d
            if min(tr.bg_mgdl[m].min(), tr.cgm_mgdl[m].min()) >= 70.0:
                s.low_free_days += 1
                lo, hi = tr.ts_s[m][0], tr.ts_s[m][-1]
                s.alerts_on_low_free_days += sum(
                    1 for e in notify if e.rule in LOW_KINDS and lo <= e.ts_s <= hi
                )
    return s


def main() -> int:
    s = analyse(load_traces())
    print(f"traces_days: {s.days:.1f}")
    print(f"genuine_episodes_below_54_15min: {s.episodes}")
    print(f"detected_by_urgent_low_or_soon: {s.detected}")
    print(f"urgent_low_soon_before_cgm_crosses_55: {s.soon_before_crossing}")
    print(f"median_lead_min_vs_cgm: {s.median_lead_min:.1f}")
    bg = s.bg_lead_times_min or []
    print(f"median_lead_min_vs_true_bg: {statistics.median(bg) if bg else float('nan'):.1f}")
    print(f"false_urgent_per_day: {s.false_urgent / s.days:.2f}")
    print(f"false_low_per_day: {s.false_low / s.days:.2f}")
    print(f"low_free_days: {s.low_free_days} alerts_on_them: {s.alerts_on_low_free_days}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
