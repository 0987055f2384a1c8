"""Benchmark of the algorithms a device actor and a report job run.

    .venv/bin/python bench/algorithms.py

* ``batch_10k_ms``: one device's batch of 10,000 glucose readings (5-minute interval, about
  35 days, e.g. a backfill) through smoothing, trend, prediction, flags and rule evaluation;
* ``stats_30d_ms``: consensus statistics, the variability and risk metrics (GRI, MAGE,
  CONGA, MODD, LBGI/HBGI, ADRR, J-index, MAD, IQR, eA1c), AGP percentiles and daily profiles
  over 30 days of 1-minute data (43,200 readings) in a daylight-saving zone; target < 20 ms.

Each figure is the median of several runs after a warm-up, printed beside a yardstick measured
in the same run (sorting the 43,200 readings with numpy), so a loaded machine shows as such;
``stats_30d_cpu_ms`` is the same figure in this process's CPU time, which other processes on
shared cores inflate far less than wall time.
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from algorithms.evaluator import AlertInputs, EvaluatorState, evaluate
from algorithms.glucose_stats import (
    agp_profile,
    daily_profiles,
    glucose_report,
    glucose_stats,
)
from algorithms.glucose_stream import process_glucose
from algorithms.rules import default_rules
from algorithms.variability import variability

START = 1_704_067_200.0  # 2024-01-01 UTC
TZ = "Europe/Paris"


def synthetic_cgm(n: int, interval_s: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    ts = START + np.arange(n) * interval_s
    hours = (ts - START) / 3600.0
    base = 140 + 60 * np.sin(2 * np.pi * hours / 24) + 40 * np.sin(2 * np.pi * hours / 5.3)
    drift = np.cumsum(rng.normal(0, 0.8, n))
    drift -= np.convolve(drift, np.ones(50) / 50, mode="same")
    return ts, np.clip(base + drift + rng.normal(0, 5, n), 40, 400)


def median_ms(
    fn: Callable[[], object], repeat: int = 15, clock: Callable[[], float] = time.perf_counter
) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = clock()
        fn()
        times.append((clock() - t0) * 1000.0)
    return statistics.median(times)


def batch_pipeline(ts: np.ndarray, g: np.ndarray) -> int:
    stream, _ = process_glucose(ts, g)
    inputs = AlertInputs(
        ts,
        glucose_mgdl=stream.alert_mgdl,
        glucose_rate_mgdl_per_min=stream.rate_mgdl_per_min,
        glucose_pred_20_mgdl=stream.pred_20_mgdl,
    )
    # A backfill old enough to notify: every alert episode in it produces events.
    _, events = evaluate(
        default_rules("glucose"),
        EvaluatorState(),
        inputs,
        now_s=float(ts[-1]),
        tz=TZ,
        max_alert_age_s=1e12,
    )
    return len(events)


def stats_30d(ts: np.ndarray, g: np.ndarray) -> None:
    glucose_report(ts, g, start_s=START, end_s=START + 30 * 86400.0, interval_s=60.0, tz=TZ)


def main() -> int:
    ts5, g5 = synthetic_cgm(10_000, 300.0)
    stream, _ = process_glucose(ts5, g5)
    parts = {
        "smoothing+trend+prediction+flags": lambda: process_glucose(ts5, g5),
        "rule evaluation": lambda: evaluate(
            default_rules("glucose"),
            EvaluatorState(),
            AlertInputs(
                ts5,
                glucose_mgdl=stream.alert_mgdl,
                glucose_rate_mgdl_per_min=stream.rate_mgdl_per_min,
                glucose_pred_20_mgdl=stream.pred_20_mgdl,
            ),
            now_s=float(ts5[-1]),
            tz=TZ,
            max_alert_age_s=1e12,
        ),
    }
    for name, fn in parts.items():
        print(f"  {name}: {median_ms(fn):.2f} ms")
    ts1, g1 = synthetic_cgm(10_000, 60.0, seed=1)
    one_min = median_ms(lambda: batch_pipeline(ts1, g1))
    print(f"  batch of 10,000 1-minute readings: {one_min:.2f} ms")
    batch = median_ms(lambda: batch_pipeline(ts5, g5))
    print(f"batch of 10,000 5-minute readings, one device ({batch_pipeline(ts5, g5)} events)")

    tsd, gd = synthetic_cgm(43_200, 60.0, seed=2)
    print(f"  glucose_stats: {median_ms(lambda: glucose_stats(tsd, gd, interval_s=60.0)):.2f} ms")
    print(f"  agp_profile: {median_ms(lambda: agp_profile(tsd, gd, tz=TZ)):.2f} ms")
    print(f"  daily_profiles: {median_ms(lambda: daily_profiles(tsd, gd, tz=TZ)):.2f} ms")
    s = glucose_stats(tsd, gd, interval_s=60.0)
    r = s.ranges
    bands = (r.below_54_pct, r.from_54_below_70_pct, r.above_180_to_250_pct, r.above_250_pct)
    var = median_ms(
        lambda: variability(tsd, gd, ranges=bands, mean_mgdl=s.mean_mgdl, sd_mgdl=s.sd_mgdl, tz=TZ)
    )
    print(f"  variability (GRI, MAGE, CONGA, MODD, LBGI/HBGI, ADRR, ...): {var:.2f} ms")
    stats = median_ms(lambda: stats_30d(tsd, gd))
    # CPU time of this process: what the work costs when other processes share the cores.
    stats_cpu = median_ms(lambda: stats_30d(tsd, gd), clock=time.process_time)
    yardstick = median_ms(lambda: np.sort(gd))
    print("30-day report on 43,200 1-minute readings (stats + variability + previous window +")
    print("AGP + daily); target < 20 ms")
    print(f"yardstick_sort_43k_ms: {yardstick:.3f}")
    print(f"batch_10k_ms: {batch:.2f}")
    print(f"stats_30d_ms: {stats:.2f}")
    print(f"stats_30d_cpu_ms: {stats_cpu:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
