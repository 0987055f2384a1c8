"""The per-batch temperature pipeline: patch-off detection, skin-to-core, smoothing, flags.

A patch measures skin temperature; core temperature is estimated by adding the offset of
the body site it sits on (configurable, :data:`SITE_OFFSET_C` are defaults). A patch that
comes off cools quickly towards ambient: a drop of ``patch_off_drop_c`` or more within
``patch_off_window_s`` (faster than any body cools) marks the stream *patch off* until the
reading returns near its pre-drop level. Patch-off readings are a sensor problem: they get
no core estimate, so they can never look like hypothermia.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np

from algorithms.episodes import sustained
from algorithms.smoothing import exponential_smooth
from algorithms.trend import rate_per_min

FEVER_C = 38.0
HIGH_FEVER_C = 39.5
HYPOTHERMIA_C = 35.0


class BodySite(StrEnum):
    AXILLA = "axilla"
    CHEST = "chest"
    FOREHEAD = "forehead"
    WRIST = "wrist"
    EAR = "ear"
    CORE = "core"  # ingestible or rectal: no offset


# Typical skin-to-core differences (C) at rest in a warm room; devices may calibrate their own.
SITE_OFFSET_C: dict[BodySite, float] = {
    BodySite.AXILLA: 0.5,
    BodySite.CHEST: 1.5,
    BodySite.FOREHEAD: 1.0,
    BodySite.WRIST: 3.0,
    BodySite.EAR: 0.2,
    BodySite.CORE: 0.0,
}


def core_offset_c(site: BodySite | str, overrides: dict[str, float] | None = None) -> float:
    if overrides and str(site) in overrides:
        return float(overrides[str(site)])
    return SITE_OFFSET_C[BodySite(site)]


def skin_to_core(skin_c: np.ndarray, offset_c: float) -> np.ndarray:
    return np.asarray(skin_c, dtype=np.float64) + offset_c


@dataclass(frozen=True, slots=True)
class TemperatureParams:
    offset_c: float = SITE_OFFSET_C[BodySite.AXILLA]
    smooth_tau_s: float = 300.0
    fever_c: float = FEVER_C
    fever_min_s: float = 30 * 60.0
    high_fever_c: float = HIGH_FEVER_C
    high_fever_min_s: float = 10 * 60.0
    hypothermia_c: float = HYPOTHERMIA_C
    hypothermia_min_s: float = 15 * 60.0
    rapid_rise_c_per_min: float = 1.0 / 60.0  # 1 C per hour
    rate_window_s: float = 30 * 60.0
    patch_off_drop_c: float = 1.5
    patch_off_window_s: float = 10 * 60.0
    patch_on_margin_c: float = 0.7  # back within this of the pre-drop level: on again
    ambient_margin_c: float = 2.0  # skin this close to ambient: off


@dataclass(frozen=True, slots=True)
class TemperatureState:
    """Carried between batches; JSON-safe via to_dict/from_dict."""

    last_ts_s: float | None = None
    smoothed_c: float | None = None
    patch_off: bool = False
    pre_drop_skin_c: float | None = None
    tail_ts_s: list[float] = field(default_factory=list)  # recent skin readings
    tail_skin_c: list[float] = field(default_factory=list)
    tail_core_c: list[float] = field(default_factory=list)  # recent smoothed core
    fever_since_s: float | None = None
    high_fever_since_s: float | None = None
    hypothermia_since_s: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TemperatureState:
        return cls(**d)


@dataclass(frozen=True, slots=True)
class TemperatureStream:
    ts_s: np.ndarray
    skin_c: np.ndarray
    core_c: np.ndarray  # smoothed core estimate; NaN while the patch is off
    rate_c_per_min: np.ndarray
    patch_off: np.ndarray
    fever: np.ndarray  # >= fever_c sustained fever_min_s
    high_fever: np.ndarray
    hypothermia: np.ndarray
    rapid_rise: np.ndarray


def _patch_off(
    ts: np.ndarray,
    skin: np.ndarray,
    state: TemperatureState,
    p: TemperatureParams,
    ambient_c: float | None,
) -> tuple[np.ndarray, bool, float | None]:
    hist_t = [*state.tail_ts_s, *ts.tolist()]
    hist_v = [*state.tail_skin_c, *skin.tolist()]
    k0 = len(state.tail_ts_s)
    off, ref = state.patch_off, state.pre_drop_skin_c
    out = np.zeros(ts.size, dtype=bool)
    lo = 0
    for i in range(k0, len(hist_t)):
        t, v = hist_t[i], hist_v[i]
        if v != v:
            out[i - k0] = off
            continue
        while hist_t[lo] < t - p.patch_off_window_s:
            lo += 1
        near_ambient = ambient_c is not None and v - ambient_c < p.ambient_margin_c
        if off:
            if not near_ambient and (ref is None or v >= ref - p.patch_on_margin_c):
                off, ref = False, None
        else:
            recent = [x for x in hist_v[lo:i] if x == x]
            peak = max(recent) if recent else v
            if peak - v >= p.patch_off_drop_c:
                off, ref = True, peak
            elif near_ambient:
                off, ref = True, None
        out[i - k0] = off
    return out, off, ref


def process_temperature(
    ts_s: np.ndarray,
    skin_c: np.ndarray,
    state: TemperatureState | None = None,
    *,
    params: TemperatureParams = TemperatureParams(),
    ambient_c: float | None = None,
) -> tuple[TemperatureStream, TemperatureState]:
    """Run one sorted batch of skin readings through the pipeline, continuing from ``state``."""
    st = state or TemperatureState()
    p = params
    ts = np.asarray(ts_s, dtype=np.float64)
    skin = np.asarray(skin_c, dtype=np.float64)
    off, off_now, ref = _patch_off(ts, skin, st, p, ambient_c)
    core_raw = np.where(off, np.nan, skin_to_core(skin, p.offset_c))
    last = (
        (st.last_ts_s, st.smoothed_c)
        if st.last_ts_s is not None and st.smoothed_c is not None
        else None
    )
    core, carry = exponential_smooth(ts, core_raw, p.smooth_tau_s, last=last)
    k = len(st.tail_ts_s)
    all_t = np.concatenate((np.asarray(st.tail_ts_s, dtype=np.float64), ts))
    all_c = np.concatenate((np.asarray(st.tail_core_c, dtype=np.float64), core))
    fin = np.isfinite(all_c)
    rate_all = np.full(all_t.size, np.nan)
    rate_all[fin] = rate_per_min(all_t[fin], all_c[fin], window_s=p.rate_window_s)
    rate = rate_all[k:]
    rate[off] = np.nan
    with np.errstate(invalid="ignore"):
        fever, f_since = sustained(ts, core >= p.fever_c, p.fever_min_s, since_s=st.fever_since_s)
        high, h_since = sustained(
            ts, core >= p.high_fever_c, p.high_fever_min_s, since_s=st.high_fever_since_s
        )
        hypo, y_since = sustained(
            ts, core < p.hypothermia_c, p.hypothermia_min_s, since_s=st.hypothermia_since_s
        )
        rapid = rate >= p.rapid_rise_c_per_min
    keep_from = (ts[-1] if ts.size else (st.last_ts_s or 0.0)) - max(
        p.rate_window_s, p.patch_off_window_s
    )
    t_keep = all_t >= keep_from
    all_skin = np.concatenate((np.asarray(st.tail_skin_c, dtype=np.float64), skin))
    new_state = TemperatureState(
        last_ts_s=carry[0] if carry else st.last_ts_s,
        smoothed_c=carry[1] if carry and not math.isnan(carry[1]) else st.smoothed_c,
        patch_off=off_now,
        pre_drop_skin_c=ref,
        tail_ts_s=all_t[t_keep].tolist(),
        tail_skin_c=all_skin[t_keep].tolist(),
        tail_core_c=all_c[t_keep].tolist(),
        fever_since_s=f_since,
        high_fever_since_s=h_since,
        hypothermia_since_s=y_since,
    )
    return (
        TemperatureStream(ts, skin, core, rate, off, fever, high, hypo, rapid),
        new_state,
    )
