"""Short-term glucose prediction from the Kalman state: a damped-trend forecast.

The forecast carries the current rate forward with exponential damping (time constant
``tau_min``), because glucose trends flatten out within tens of minutes and straight-line
extrapolation overshoots at every turn::

    g(h) = level + rate * tau * (1 - exp(-h / tau))

Its SD combines the filter's own uncertainty about level and rate with the process noise over
the horizon. Nightscout's AR2 model (log-space, fixed 5-minute steps) is provided for
comparison and for clients that want the same cone Nightscout draws.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from algorithms.smoothing import KalmanParams, KalmanResult

DEFAULT_TAU_MIN = 15.0


@dataclass(frozen=True, slots=True)
class Forecast:
    horizon_min: float
    mgdl: np.ndarray
    sd_mgdl: np.ndarray


def damped_gain(horizon_min: float, tau_min: float = DEFAULT_TAU_MIN) -> float:
    """How many minutes of the current rate the forecast adds at ``horizon_min``."""
    return tau_min * (1.0 - math.exp(-horizon_min / tau_min))


def forecast(
    kal: KalmanResult,
    horizon_min: float,
    *,
    tau_min: float = DEFAULT_TAU_MIN,
    params: KalmanParams = KalmanParams(),
) -> Forecast:
    """Forecast ``horizon_min`` ahead of every filtered reading (NaN where the rate is unknown)."""
    g = damped_gain(horizon_min, tau_min)
    rate = kal.rate_mgdl_per_min
    mean = kal.level_mgdl + g * rate
    h = horizon_min
    q = params.accel_sd_mgdl_per_min2**2
    var = kal.level_var + 2 * g * kal.cov_level_rate + g * g * kal.rate_var + q * h**3 / 3.0
    return Forecast(horizon_min, mean, np.sqrt(np.maximum(var, 0.0)))


# Nightscout AR2 (lib/plugins/ar2.js): coefficients on log(bg / 140) at 5-minute steps.
AR2_COEF = (-0.723, 1.716)
AR2_BG_REF = 140.0


def ar2_forecast(prev_mgdl: float, last_mgdl: float, steps: int) -> np.ndarray:
    """Nightscout AR2 predictions for the next ``steps`` 5-minute steps."""
    y0, y1 = math.log(prev_mgdl / AR2_BG_REF), math.log(last_mgdl / AR2_BG_REF)
    out = np.empty(steps)
    for k in range(steps):
        y0, y1 = y1, AR2_COEF[0] * y0 + AR2_COEF[1] * y1
        out[k] = AR2_BG_REF * math.exp(y1)
    return out
