"""Deterministic randomness as a function of absolute time.

Simulated sensors must report the same value for the same (seed, timestamp) however the
time range is sliced, so that a restarted simulator continues the same curve. Two tools:

* :func:`day_rng` — a NumPy generator seeded from (seed, stream, day number), used to plan
  the events of one day (meals, fevers, dropouts);
* counter-based hashing (SplitMix64) of integer slot indices — :func:`hashed_uniform`,
  :func:`hashed_normal` and the autocorrelated :func:`smooth_noise` — for per-reading noise.
"""

from __future__ import annotations

import numpy as np

_MASK64 = (1 << 64) - 1
_DAY_OFFSET = 1 << 40  # keeps SeedSequence entropy non-negative for days before 1970
_CHUNK_SLOTS = 4096


def day_rng(seed: int, stream: int, day: int) -> np.random.Generator:
    """A generator for one ``stream`` (event family) of one local day of one seed."""
    return np.random.default_rng(
        np.random.SeedSequence([seed & _MASK64, stream, day + _DAY_OFFSET])
    )


def stream_key(seed: int, stream: int) -> int:
    """A 64-bit key for the hashed noise of one stream of one seed."""
    state = np.random.SeedSequence([seed & _MASK64, stream]).generate_state(1, np.uint64)
    return int(state[0])


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser over a uint64 array (wrapping arithmetic)."""
    z = x + np.uint64(0x9E3779B97F4A7C15)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _hash(key: int, index: np.ndarray, lane: int) -> np.ndarray:
    salt = _splitmix64(np.array([(key ^ (lane * 0xD1B54A32D192ED03)) & _MASK64], dtype=np.uint64))
    idx = np.asarray(index, dtype=np.int64).view(np.uint64)
    return _splitmix64(_splitmix64(idx ^ salt[0]) + salt[0])


def hashed_uniform(key: int, index: np.ndarray, lane: int = 0) -> np.ndarray:
    """Uniform(0, 1) values, one per integer index, fixed by (key, index, lane)."""
    bits = _hash(key, np.atleast_1d(index), lane) >> np.uint64(11)
    return (bits.astype(np.float64) + 0.5) * (1.0 / (1 << 53))


def hashed_normal(key: int, index: np.ndarray) -> np.ndarray:
    """Standard normal values, one per integer index, fixed by (key, index) (Box-Muller)."""
    u1 = hashed_uniform(key, index, lane=1)
    u2 = hashed_uniform(key, index, lane=2)
    return np.sqrt(-2.0 * np.log(u1)) * np.cos(2.0 * np.pi * u2)


def smooth_noise(key: int, ts: np.ndarray, step_s: float, tau_s: float) -> np.ndarray:
    """Unit-variance noise, autocorrelated with time constant ``tau_s``, at times ``ts``.

    Values live on a grid of ``step_s``: each grid value is an exponentially weighted sum
    of hashed white noise over the preceding slots (a truncated AR(1) process); times
    between grid points are interpolated linearly. The value at a time depends only on
    (key, time), never on the other times asked for.
    """
    ts = np.asarray(ts, dtype=np.float64)
    if ts.size == 0:
        return np.zeros_like(ts)
    phi = float(np.exp(-step_s / tau_s)) if tau_s > 0 else 0.0
    lags = 1 if phi <= 0.0 else max(1, int(np.ceil(np.log(1e-4) / np.log(phi))))
    weights = phi ** np.arange(lags, dtype=np.float64)
    weights /= np.sqrt(np.sum(weights**2))

    pos = ts / step_s
    k0 = np.floor(pos).astype(np.int64)
    frac = pos - k0
    slots = np.unique(np.concatenate([k0.ravel(), k0.ravel() + 1]))
    grid = np.empty(slots.size, dtype=np.float64)
    back = np.arange(lags, dtype=np.int64)
    for lo in range(0, slots.size, _CHUNK_SLOTS):
        chunk = slots[lo : lo + _CHUNK_SLOTS]
        idx = chunk[:, None] - back[None, :]
        white = hashed_normal(key, idx.ravel()).reshape(idx.shape)
        acc = np.zeros(chunk.size, dtype=np.float64)
        for lag in range(lags):  # elementwise, so bit-identical whatever the chunk holds
            acc += weights[lag] * white[:, lag]
        grid[lo : lo + chunk.size] = acc
    at = np.searchsorted(slots, k0)
    return grid[at] * (1.0 - frac) + grid[at + 1] * frac
