"""``DeviceActor``: one device's stream state and what happens to each batch it receives.

Plain Python (no Ray, no I/O): a ``DeviceShard`` hosts many of these and does the writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actors.alerting import DeviceAlerts, Live, glucose_latest
from algorithms.sensors import SensorKind, spec_for
from algorithms.trend import TREND_WINDOW_S, direction, directions, rate_per_min, rates_at_many
from algorithms.validation import Problem, acceptable, validate_readings
from storage.alerts import AlertContext, AlertOp
from storage.devices import DeviceInfo
from storage.readings import DeviceRows, StoredReadings

log = logging.getLogger(__name__)
US = 1_000_000
# How much recent history a device keeps in memory: the trend window, with room to spare
# for late readings that arrive a little out of order.
KEEP_US = 4 * TREND_WINDOW_S * US


class BatchRejected(Exception):
    """The batch has readings the sensor cannot have produced; nothing of it is stored."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__(f"{len(problems)} invalid reading(s)")
        self.problems = problems


@dataclass(slots=True)
class PreparedBatch:
    rows: DeviceRows  # new to this device's stream, with trend fields, to be written
    duplicates: int  # already known (re-sent, or repeated inside the batch)
    ops: list[AlertOp] = field(default_factory=list)  # alerts fired, repeated, cleared
    live: Live | None = None  # the newest new reading, for the live stream
    before: Any = None  # alert state before this batch (restored if it is not written)
    # Its readings only extend the stream (newer than every stored one) and all were
    # evaluated: a restarted shard can run them again (``actors.alerting``), so the alert
    # state need not be written with them.
    replayable: bool = False


class DeviceActor:
    """A device's stream state: recent readings (sorted by time) and the trend over them."""

    def __init__(
        self, info: DeviceInfo, history: StoredReadings, context: AlertContext | None = None
    ) -> None:
        self.info = info
        self.spec = spec_for(info.kind)
        self.alerts = DeviceAlerts(info.kind, context)
        self._ts_us = np.asarray(history.ts_us, dtype=np.int64)
        self._values = np.asarray(history.values, dtype=np.float64)
        through = self.alerts.written_through_us
        if through is not None and self._ts_us.size and self._ts_us[-1] > through:
            after = self._ts_us > through  # evaluated before, not in the written state
            self.alerts.replay(self._ts_us[after] / US, self._values[after])

    @property
    def newest_us(self) -> int | None:
        """The newest reading's time (µs) in the window: the newest stored or being stored."""
        return int(self._ts_us[-1]) if self._ts_us.size else None

    @property
    def window_size(self) -> int:
        return int(self._ts_us.size)

    def accept(
        self,
        ts_us: np.ndarray,
        values: np.ndarray,
        now_us: int,
        received_us: int | None = None,
        history: bool = False,
    ) -> PreparedBatch:
        """Validate, de-duplicate, trend and evaluate the alert rules; updates the state.
        ``history`` (an import of past readings): no alert rule is evaluated, nothing goes
        to the live stream.

        Raises ``BatchRejected`` (state unchanged) if any reading is invalid.
        """
        ts_us = np.asarray(ts_us, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64)
        problems = validate_readings(ts_us / US, values, self.spec, now_us / US)
        if problems:
            raise BatchRejected(problems)
        # Within the batch the first reading of a timestamp wins; np.unique also sorts.
        batch_ts, first = np.unique(ts_us, return_index=True)
        batch_values = values[first]
        known = np.isin(batch_ts, self._ts_us, assume_unique=True)
        new_ts, new_values = batch_ts[~known], batch_values[~known]
        duplicates = int(ts_us.size - new_ts.size)

        merged_ts = np.concatenate((self._ts_us, new_ts))
        merged_values = np.concatenate((self._values, new_values))
        order = np.argsort(merged_ts, kind="stable")
        merged_ts, merged_values = merged_ts[order], merged_values[order]
        is_new = np.concatenate((np.zeros(self._ts_us.size, bool), np.ones(new_ts.size, bool)))
        is_new = is_new[order]
        rates = rate_per_min(merged_ts / US, merged_values)[is_new]
        thresholds = self.spec.thresholds
        arrows = [direction(float(r), thresholds).value for r in rates]
        return self._apply(
            merged_ts, merged_values, new_ts, new_values, rates, arrows, duplicates,
            now_us, received_us, history,
        )  # fmt: skip

    def extend(
        self,
        ts_us: np.ndarray,
        values: np.ndarray,
        rates: np.ndarray,
        now_us: int,
        received_us: int | None = None,
        history: bool = False,
        arrows: list[str] | None = None,
        evaluate: bool = True,
    ) -> PreparedBatch:
        """:meth:`accept` of a valid batch that is :meth:`in_order`, whose trend ``rates``
        (and ``arrows``) were computed already (by ``accept_many``, with those of other
        devices); ``evaluate`` False leaves the alert rules to the caller (:meth:`evaluate`)."""
        ts_us, values = np.asarray(ts_us, np.int64), np.asarray(values, np.float64)
        if arrows is None:
            arrows = [d.value for d in directions(rates, self.spec.thresholds)]
        return self._apply(
            np.concatenate((self._ts_us, ts_us)), np.concatenate((self._values, values)),
            ts_us, values, rates, arrows, 0, now_us, received_us, history or not evaluate,
        )  # fmt: skip

    @property
    def window(self) -> tuple[np.ndarray, np.ndarray]:
        """The recent readings kept (times in µs, values), oldest first."""
        return self._ts_us, self._values

    def in_order(self, ts_us: np.ndarray) -> bool:
        """Whether a batch is sorted, has no repeated time and is all newer than the
        window: then it just extends the window (the common case, see ``accept_many``)."""
        return bool(
            ts_us.size
            and (self._ts_us.size == 0 or ts_us[0] > self._ts_us[-1])
            and (ts_us.size == 1 or (np.diff(ts_us) > 0).all())
        )

    def _apply(
        self,
        merged_ts: np.ndarray,
        merged_values: np.ndarray,
        new_ts: np.ndarray,
        new_values: np.ndarray,
        rates: np.ndarray,
        arrows: list[str],
        duplicates: int,
        now_us: int,
        received_us: int | None,
        history: bool,
    ) -> PreparedBatch:
        """Keep the new window, then evaluate the alert rules on the new readings."""
        # New rows (sorted) all after the window's newest: none of them can be stored yet.
        after_stored = bool(self._ts_us.size == 0 or (new_ts.size and new_ts[0] > self._ts_us[-1]))
        keep = merged_ts >= merged_ts[-1] - KEEP_US if merged_ts.size else slice(None)
        self._ts_us, self._values = merged_ts[keep], merged_values[keep]
        rows = DeviceRows(
            device_id=self.info.id,
            ts_us=new_ts,
            values=new_values,
            rate_per_min=rates,
            direction=arrows,
            after_stored=after_stored,
        )
        prepared = PreparedBatch(rows=rows, duplicates=duplicates, before=self.alerts.snapshot())
        if not history:
            self.evaluate(prepared, now_us, received_us)
        return prepared

    def evaluate(self, prepared: PreparedBatch, now_us: int, received_us: int | None) -> None:
        """The alert rules on a prepared batch's new readings: its ``ops`` and ``live``."""
        try:
            prepared.ops, prepared.live = self.alerts.on_readings(
                prepared.rows.ts_us / US,
                prepared.rows.values,
                now_us / US,
                (received_us or now_us) / US,
            )
        except Exception:  # a fault in alerting must never cost a reading
            log.exception("alert evaluation failed for device %s", self.info.id)
            self.alerts.restore(prepared.before)
            prepared.ops, prepared.live = [], None
            prepared.replayable = False  # not evaluated: a replay must not evaluate them

    def forget(self, ts_us: np.ndarray, prepared: PreparedBatch | None = None) -> None:
        """Drop readings that turned out not to be stored (their write failed)."""
        keep = ~np.isin(self._ts_us, ts_us)
        self._ts_us, self._values = self._ts_us[keep], self._values[keep]
        if prepared is not None and prepared.before is not None:
            self.alerts.restore(prepared.before)


Batch = tuple[DeviceActor, np.ndarray, np.ndarray, int | None, bool]  # ts_us, values, rx, history
# Streams trended together are padded to the longest: chunks of at most this many cells.
_CHUNK_CELLS = 262_144


def accept_many(batches: list[Batch], now_us: int) -> list[PreparedBatch | BatchRejected]:
    """:meth:`DeviceActor.accept` for many devices' batches, in order, with the same results:
    validation and the trend of every in-order batch (see :meth:`DeviceActor.in_order`) are
    computed for all devices as one set of arrays, and so are the filter, the prediction and
    the alert rules of those that bring one new glucose reading (:func:`_evaluate_many`); the
    rest, and a device's second batch in the call, take the per-device path after them. Each
    device keeps its own state and alert rules."""
    fast = _fast_batches(batches, now_us)
    rates = _rates(batches, fast)
    arrows = _arrows(batches, rates)
    out: list[PreparedBatch | BatchRejected | None] = [None] * len(batches)
    evaluate: list[tuple[DeviceActor, PreparedBatch, int | None]] = []
    for i in fast:  # each the first batch of its device: before any other batch of it
        actor, ts_us, values, received_us, history = batches[i]
        prepared = actor.extend(
            ts_us, values, rates[i], now_us, received_us, history, arrows[i], evaluate=False
        )
        if not history:
            prepared.replayable = True  # unless its evaluation fails (DeviceActor.evaluate)
            evaluate.append((actor, prepared, received_us))
        out[i] = prepared
    _evaluate_many(evaluate, now_us)
    for i, (actor, ts_us, values, received_us, history) in enumerate(batches):
        if out[i] is None:
            try:
                out[i] = actor.accept(ts_us, values, now_us, received_us, history)
            except BatchRejected as rejected:
                out[i] = rejected
    return out  # type: ignore[return-value]  # every place filled above


def _arrows(batches: list[Batch], rates: dict[int, np.ndarray]) -> dict[int, list[str]]:
    """The trend arrows of the fast batches' rates, one ``directions`` call per sensor kind."""
    out: dict[int, list[str]] = {}
    by_kind: dict[str, list[int]] = {}
    for i in rates:
        by_kind.setdefault(batches[i][0].info.kind, []).append(i)
    for indexes in by_kind.values():
        thresholds = batches[indexes[0]][0].spec.thresholds
        every = [
            d.value for d in directions(np.concatenate([rates[i] for i in indexes]), thresholds)
        ]
        start = 0
        for i in indexes:
            out[i] = every[start : start + rates[i].size]
            start += rates[i].size
    return out


def _evaluate_many(items: list[tuple[DeviceActor, PreparedBatch, int | None]], now_us: int) -> None:
    """:meth:`DeviceActor.evaluate` of each prepared batch: those that bring one glucose
    reading newer than the stream's head together (``actors.alerting.glucose_latest``), the
    others (and all of them if that fails) one by one."""
    one = [
        k
        for k, (actor, prepared, _rx) in enumerate(items)
        if actor.alerts.kind is SensorKind.GLUCOSE and prepared.rows.ts_us.size == 1
    ]
    ts_s = np.concatenate([items[k][1].rows.ts_us for k in one]) / US if one else np.zeros(0)
    heads = np.array([_head(items[k][0]) for k in one], dtype=np.float64)
    together = [k for k, newer in zip(one, (ts_s > heads).tolist(), strict=True) if newer]
    chosen = set(together)
    for k, (actor, prepared, received_us) in enumerate(items):
        if k not in chosen:
            actor.evaluate(prepared, now_us, received_us)
    if not together:
        return
    newer = ts_s[ts_s > heads]
    try:
        results = glucose_latest(
            [items[k][0].alerts for k in together],
            newer,
            np.concatenate([items[k][1].rows.values for k in together]),
            now_us / US,
            [(items[k][2] or now_us) / US for k in together],
        )
    except Exception:  # the per-device path then, with its own fault handling
        log.exception("alert evaluation of %d devices together failed", len(together))
        for k in together:  # from the state before, whatever was handed back already
            items[k][0].alerts.restore(items[k][1].before)
            items[k][0].evaluate(items[k][1], now_us, items[k][2])
        return
    for k, (ops, live) in zip(together, results, strict=True):
        items[k][1].ops, items[k][1].live = ops, live


def _head(actor: DeviceActor) -> float:
    head = actor.alerts.head_s
    return -np.inf if head is None else head


def _fast_batches(batches: list[Batch], now_us: int) -> list[int]:
    """Indexes of the batches whose readings are all valid and in order, first of their device."""
    if not batches:
        return []
    sizes = np.array([np.size(b[1]) for b in batches])
    ts_us = np.concatenate([np.asarray(b[1], np.int64) for b in batches])
    values = np.concatenate([np.asarray(b[2], np.float64) for b in batches])
    low = np.repeat([b[0].spec.min_value for b in batches], sizes)
    high = np.repeat([b[0].spec.max_value for b in batches], sizes)
    ok = acceptable(ts_us / US, values, low, high, now_us / US)
    bad = np.bincount(np.repeat(np.arange(len(batches)), sizes), ~ok, len(batches))
    seen: set[int] = set()
    fast = []
    for i, (actor, ts, *_rest) in enumerate(batches):
        if id(actor) in seen:
            continue
        seen.add(id(actor))
        if sizes[i] and not bad[i] and actor.in_order(np.asarray(ts, np.int64)):
            fast.append(i)
    return fast


def _rates(batches: list[Batch], fast: list[int]) -> dict[int, np.ndarray]:
    """The new readings' rates of the fast batches, many streams per set of arrays."""
    out: dict[int, np.ndarray] = {}
    lengths = {i: batches[i][0].window_size + np.size(batches[i][1]) for i in fast}
    chunk: list[int] = []
    for i in sorted(fast, key=lengths.__getitem__):
        if chunk and (len(chunk) + 1) * lengths[i] > _CHUNK_CELLS:
            out.update(_rates_chunk(batches, chunk, lengths))
            chunk = []
        chunk.append(i)
    if chunk:
        out.update(_rates_chunk(batches, chunk, lengths))
    return out


def _rates_chunk(
    batches: list[Batch], chunk: list[int], lengths: dict[int, int]
) -> dict[int, np.ndarray]:
    """The rates of the chunk's new readings: each stream (window, then its new readings)
    one row of a padded array, filled in one assignment from all of them laid end to end."""
    actors = [batches[i][0] for i in chunk]
    kept = np.array([a.window_size for a in actors])
    total = np.array([lengths[i] for i in chunk])
    width = int(total.max())
    parts_ts: list[np.ndarray] = []
    parts_values: list[np.ndarray] = []
    for actor, i in zip(actors, chunk, strict=True):
        window_ts, window_values = actor.window
        parts_ts += (window_ts, np.asarray(batches[i][1], np.int64))
        parts_values += (window_values, np.asarray(batches[i][2], np.float64))
    filled = np.arange(width) < total[:, None]  # row by row, as the parts were laid out
    ts = np.zeros((len(chunk), width), np.int64)
    values = np.zeros((len(chunk), width))
    ts[filled], values[filled] = np.concatenate(parts_ts), np.concatenate(parts_values)
    added = total - kept
    all_rows = np.repeat(np.arange(len(chunk)), added)
    first = np.cumsum(added) - added  # where each stream's new readings start among all
    all_cols = np.arange(int(added.sum())) - np.repeat(first - kept, added)
    rates = rates_at_many(ts / US, values, total, all_rows, all_cols)
    bounds = np.concatenate(([0], np.cumsum(added))).tolist()
    return {i: rates[bounds[r] : bounds[r + 1]] for r, i in enumerate(chunk)}
