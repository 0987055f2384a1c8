"""Causal smoothing of CGM readings: a local-linear-trend Kalman filter with outlier gating.

State is glucose level (mg/dL) and its rate (mg/dL/min); time steps are taken from the
timestamps, so 1-minute, 5-minute and irregular data are all handled, and a gap longer than
``max_gap_s`` restarts the filter from the next reading (rate unknown until re-learnt).

Outliers are handled asymmetrically so that a genuine fast fall is never held back:

* a reading that moved from the last accepted one faster than any physiological change
  (``max_rate_mgdl_per_min``, by more than ``min_jump_mgdl``) is an *implausible jump*; it is
  skipped, unless the next reading confirms the new level (a real shift), which restarts the
  filter there;
* a reading far *above* the prediction (``gate_sigma`` innovation SDs) is an *outlier* and
  skipped for one reading the same way;
* a reading below the prediction at a physiological rate is always taken as it is, however
  surprising: lows are where being late hurts.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

import numpy as np


@dataclass(frozen=True, slots=True)
class KalmanParams:
    meas_sd_mgdl: float = 8.0
    accel_sd_mgdl_per_min2: float = 0.1  # spectral density of the rate's random walk (sqrt)
    gate_sigma: float = 4.0
    gate_min_mgdl: float = 20.0
    max_rate_mgdl_per_min: float = 8.0
    min_jump_mgdl: float = 30.0
    confirm_mgdl: float = 20.0  # a second reading this close to a rejected one confirms it
    max_gap_s: float = 20 * 60.0
    initial_rate_sd_mgdl_per_min: float = 2.0
    max_rate_sd_mgdl_per_min: float = 1.0  # above this the rate is reported as NaN


@dataclass(frozen=True, slots=True)
class KalmanState:
    """Filter state after the last reading; JSON-safe through to_dict/from_dict."""

    ts_s: float
    level_mgdl: float
    rate_mgdl_per_min: float
    p00: float
    p01: float
    p11: float
    accepted_mgdl: float  # last accepted raw reading
    accepted_ts_s: float
    rejected_mgdl: float | None = None  # last reading skipped, awaiting confirmation

    def to_dict(self) -> dict[str, float | None]:
        # asdict's deep copy is not needed for plain fields (and costs: written every batch).
        return {name: getattr(self, name) for name in _KALMAN_FIELDS}

    @classmethod
    def from_dict(cls, d: dict[str, float | None]) -> KalmanState:
        return cls(**d)  # type: ignore[arg-type]


_KALMAN_FIELDS = tuple(f.name for f in fields(KalmanState))


@dataclass(frozen=True, slots=True)
class KalmanResult:
    level_mgdl: np.ndarray
    rate_mgdl_per_min: np.ndarray  # NaN while the rate is not yet known
    level_var: np.ndarray
    rate_var: np.ndarray
    cov_level_rate: np.ndarray
    outlier: np.ndarray  # skipped as an outlier above the prediction
    implausible_jump: np.ndarray  # skipped as faster than physiology
    restarted: np.ndarray  # the filter (re)started at this reading
    state: KalmanState | None


def kalman_glucose(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    state: KalmanState | None = None,
    params: KalmanParams = KalmanParams(),
) -> KalmanResult:
    """Filter a batch of readings sorted by time, continuing from ``state``.

    Readings at or before ``state.ts_s`` are not re-filtered: they get the state's values.
    """
    ts_l = np.asarray(ts_s, dtype=np.float64).tolist()
    z_l = np.asarray(mgdl, dtype=np.float64).tolist()
    nan = math.nan
    # One row per reading: level, rate, p00, p01, p11, verdict (0 ok, 1 outlier, 2 jump,
    # 3 restart); appended as tuples and converted once, which keeps the loop cheap.
    out: list[tuple[float, float, float, float, float, int]] = []
    append = out.append
    skipped_row = (nan, nan, nan, nan, nan, 0)

    R = params.meas_sd_mgdl**2
    q = params.accel_sd_mgdl_per_min2**2
    gate2 = params.gate_sigma**2
    gate_min = params.gate_min_mgdl
    max_rate_s = params.max_rate_mgdl_per_min / 60.0
    min_jump = params.min_jump_mgdl
    confirm = params.confirm_mgdl
    max_gap = params.max_gap_s
    p11_init = params.initial_rate_sd_mgdl_per_min**2
    started = state is not None
    if state is not None:
        t_prev, x0, x1 = state.ts_s, state.level_mgdl, state.rate_mgdl_per_min
        p00, p01, p11 = state.p00, state.p01, state.p11
        acc_z, acc_t, rej = state.accepted_mgdl, state.accepted_ts_s, state.rejected_mgdl
    else:
        t_prev = x0 = x1 = p00 = p01 = p11 = acc_z = acc_t = 0.0
        rej = None
    last_dt = -1.0
    q3 = q2 = q1 = 0.0

    for t, z in zip(ts_l, z_l, strict=True):
        if z != z:  # NaN reading: nothing to learn
            append(skipped_row)
            continue
        if started and t <= t_prev:
            append((x0, x1, p00, p01, p11, 0))
            continue
        if not started or t - t_prev > max_gap:
            x0, x1, p00, p01, p11 = z, 0.0, R, 0.0, p11_init
            acc_z, acc_t, rej, t_prev, started = z, t, None, t, True
            append((z, nan, R, 0.0, p11_init, 3))
            continue
        dt = (t - t_prev) / 60.0
        t_prev = t
        if dt != last_dt:  # process-noise terms only change with the step
            last_dt = dt
            q1, q2, q3 = q * dt, q * dt * dt / 2.0, q * dt * dt * dt / 3.0
        # predict
        x0 += dt * x1
        p00 += dt * (2.0 * p01 + dt * p11) + q3
        p01 += dt * p11 + q2
        p11 += q1
        s = p00 + R
        nu = z - x0
        step = z - acc_z if z > acc_z else acc_z - z
        jump = step > min_jump and step > max_rate_s * (t - acc_t)
        if jump or (nu > gate_min and nu * nu > gate2 * s):
            verdict = 2 if jump else 1
            if rej is not None and abs(z - rej) <= confirm:
                # Two readings agree on the new level: it is real. Restart there.
                x0, x1, p00, p01, p11 = z, 0.0, R, 0.0, p11_init
                acc_z, acc_t, rej = z, t, None
                verdict = 3
            else:
                rej = z
            append((x0, x1, p00, p01, p11, verdict))
            continue
        k0 = p00 / s
        k1 = p01 / s
        x0 += k0 * nu
        x1 += k1 * nu
        p11 -= k1 * p01
        p01 *= 1.0 - k0
        p00 *= 1.0 - k0
        acc_z, acc_t, rej = z, t, None
        append((x0, x1, p00, p01, p11, 0))

    arr = np.array(out, dtype=np.float64).reshape(len(out), 6)
    verdict_a = arr[:, 5]
    rate_a = arr[:, 1].copy()
    rate_a[~(arr[:, 4] <= params.max_rate_sd_mgdl_per_min**2)] = np.nan
    new_state = KalmanState(t_prev, x0, x1, p00, p01, p11, acc_z, acc_t, rej) if started else None
    return KalmanResult(
        level_mgdl=arr[:, 0].copy(),
        rate_mgdl_per_min=rate_a,
        level_var=arr[:, 2].copy(),
        rate_var=arr[:, 4].copy(),
        cov_level_rate=arr[:, 3].copy(),
        outlier=verdict_a == 1,
        implausible_jump=verdict_a == 2,
        restarted=verdict_a == 3,
        state=new_state,
    )


@dataclass(frozen=True, slots=True)
class KalmanStates:
    """Many filters' states as arrays (one entry per stream), for :func:`kalman_step_many`.

    ``started`` False is a filter that has seen no reading (``KalmanState`` None); NaN in
    ``rejected_mgdl`` is "no reading awaiting confirmation" (None).
    """

    started: np.ndarray
    ts_s: np.ndarray
    level_mgdl: np.ndarray
    rate_mgdl_per_min: np.ndarray
    p00: np.ndarray
    p01: np.ndarray
    p11: np.ndarray
    accepted_mgdl: np.ndarray
    accepted_ts_s: np.ndarray
    rejected_mgdl: np.ndarray

    @classmethod
    def gather(cls, states: Sequence[KalmanState | None]) -> KalmanStates:
        nan = math.nan
        rows = [
            (1.0, *_fields(s), nan if s.rejected_mgdl is None else s.rejected_mgdl)
            if s is not None
            else _NOT_STARTED
            for s in states
        ]
        cols = np.array(rows, dtype=np.float64).reshape(len(rows), 10).T
        return cls(cols[0] == 1.0, *cols[1:])

    def scatter(self) -> list[KalmanState | None]:
        """One ``KalmanState`` (or None) per stream, equal to what ``kalman_glucose`` keeps."""
        cols = zip(
            self.started.tolist(),
            self.ts_s.tolist(),
            self.level_mgdl.tolist(),
            self.rate_mgdl_per_min.tolist(),
            self.p00.tolist(),
            self.p01.tolist(),
            self.p11.tolist(),
            self.accepted_mgdl.tolist(),
            self.accepted_ts_s.tolist(),
            self.rejected_mgdl.tolist(),
            strict=True,
        )
        return [
            KalmanState(t, x0, x1, p00, p01, p11, acc_z, acc_t, None if rej != rej else rej)
            if started
            else None
            for started, t, x0, x1, p00, p01, p11, acc_z, acc_t, rej in cols
        ]


def _fields(s: KalmanState) -> tuple[float, ...]:
    return (s.ts_s, s.level_mgdl, s.rate_mgdl_per_min, s.p00, s.p01, s.p11,
            s.accepted_mgdl, s.accepted_ts_s)  # fmt: skip


_NOT_STARTED = (0.0,) * 9 + (math.nan,)


def kalman_step_many(
    ts_s: np.ndarray,
    mgdl: np.ndarray,
    states: KalmanStates,
    params: KalmanParams = KalmanParams(),
) -> tuple[KalmanResult, KalmanStates]:
    """:func:`kalman_glucose` of one reading for each of many streams, as arrays: entry ``i``
    is stream ``i``'s reading and state. Bit for bit what ``kalman_glucose`` gives for each
    stream alone (the same operations in the same order, element by element); the result's
    ``state`` is None, the new states are returned beside it."""
    t = np.asarray(ts_s, dtype=np.float64)
    z = np.asarray(mgdl, dtype=np.float64)
    R = params.meas_sd_mgdl**2
    q = params.accel_sd_mgdl_per_min2**2
    p11_init = params.initial_rate_sd_mgdl_per_min**2
    s0 = states
    skip = np.isnan(z)
    old = s0.started & (t <= s0.ts_s) & ~skip  # not re-filtered: the state's values
    restart = ~skip & ~old & (~s0.started | (t - s0.ts_s > params.max_gap_s))
    step = ~skip & ~old & ~restart
    with np.errstate(invalid="ignore"):
        dt = (t - s0.ts_s) / 60.0
        q1, q2, q3 = q * dt, q * dt * dt / 2.0, q * dt * dt * dt / 3.0
        # predict
        x0 = s0.level_mgdl + dt * s0.rate_mgdl_per_min
        p00 = s0.p00 + (dt * (2.0 * s0.p01 + dt * s0.p11) + q3)
        p01 = s0.p01 + (dt * s0.p11 + q2)
        p11 = s0.p11 + q1
        s = p00 + R
        nu = z - x0
        moved = np.where(z > s0.accepted_mgdl, z - s0.accepted_mgdl, s0.accepted_mgdl - z)
        jump = (moved > params.min_jump_mgdl) & (
            moved > params.max_rate_mgdl_per_min / 60.0 * (t - s0.accepted_ts_s)
        )
        gated = jump | ((nu > params.gate_min_mgdl) & (nu * nu > params.gate_sigma**2 * s))
        confirmed = gated & (np.abs(z - s0.rejected_mgdl) <= params.confirm_mgdl)
        # update
        k0, k1 = p00 / s, p01 / s
        upd = step & ~gated
        x0_u, x1_u = x0 + k0 * nu, s0.rate_mgdl_per_min + k1 * nu
        p11_u, p01_u, p00_u = p11 - k1 * p01, p01 * (1.0 - k0), p00 * (1.0 - k0)
    fresh = restart | (step & confirmed)  # (re)started at this reading
    held = step & gated & ~confirmed  # skipped, awaiting confirmation
    nan = np.full(t.shape, np.nan)

    def pick(updated: np.ndarray, predicted: np.ndarray, fresh_v: Any, prior: np.ndarray) -> Any:
        return np.where(upd, updated, np.where(held, predicted, np.where(fresh, fresh_v, prior)))

    level = pick(x0_u, x0, z, s0.level_mgdl)
    rate = pick(x1_u, s0.rate_mgdl_per_min, 0.0, s0.rate_mgdl_per_min)
    new = KalmanStates(
        started=s0.started | ~skip,
        ts_s=np.where(restart | step, t, s0.ts_s),
        level_mgdl=level,
        rate_mgdl_per_min=rate,
        p00=pick(p00_u, p00, R, s0.p00),
        p01=pick(p01_u, p01, 0.0, s0.p01),
        p11=pick(p11_u, p11, p11_init, s0.p11),
        accepted_mgdl=np.where(upd | fresh, z, s0.accepted_mgdl),
        accepted_ts_s=np.where(upd | fresh, t, s0.accepted_ts_s),
        rejected_mgdl=np.where(upd | fresh, np.nan, np.where(held, z, s0.rejected_mgdl)),
    )
    verdict = np.select([restart | (step & confirmed), held & jump, held], [3, 2, 1], 0)
    out_rate = np.where(restart, np.nan, np.where(skip, nan, new.rate_mgdl_per_min))
    out_p11 = np.where(skip, nan, new.p11)
    out_rate[~(out_p11 <= params.max_rate_sd_mgdl_per_min**2)] = np.nan
    result = KalmanResult(
        level_mgdl=np.where(skip, nan, new.level_mgdl),
        rate_mgdl_per_min=out_rate,
        level_var=np.where(skip, nan, new.p00),
        rate_var=out_p11,
        cov_level_rate=np.where(skip, nan, new.p01),
        outlier=verdict == 1,
        implausible_jump=verdict == 2,
        restarted=verdict == 3,
        state=None,
    )
    return result, new


def exponential_smooth(
    ts_s: np.ndarray,
    values: np.ndarray,
    tau_s: float,
    *,
    last: tuple[float, float] | None = None,
    max_gap_s: float = 30 * 60.0,
) -> tuple[np.ndarray, tuple[float, float] | None]:
    """Time-aware exponential smoothing (time constant ``tau_s``); NaN values are skipped.

    ``last`` is ``(ts_s, smoothed)`` carried from the previous batch; a gap longer than
    ``max_gap_s`` restarts from the raw value. Returns the smoothed values and the new carry.
    """
    ts_l = np.asarray(ts_s, dtype=np.float64).tolist()
    v_l = np.asarray(values, dtype=np.float64).tolist()
    out = [math.nan] * len(ts_l)
    t_prev, s = last if last is not None else (None, math.nan)
    for i, (t, v) in enumerate(zip(ts_l, v_l, strict=True)):
        if v != v:
            continue
        if t_prev is None or t - t_prev > max_gap_s or s != s:
            s = v
        elif t > t_prev:
            a = 1.0 - math.exp(-(t - t_prev) / tau_s)
            s += a * (v - s)
        t_prev = max(t, t_prev) if t_prev is not None else t
        out[i] = s
    carry = (float(t_prev), float(s)) if t_prev is not None else None
    return np.array(out), carry
