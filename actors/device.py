"""``DeviceActor``: one device's stream state and what happens to each batch it receives.

Plain Python (no Ray, no I/O): a ``DeviceShard`` hosts many of these and does the writing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from actors.alerting import DeviceAlerts, Live
from algorithms.sensors import spec_for
from algorithms.trend import TREND_WINDOW_S, direction, rate_per_min
from algorithms.validation import Problem, validate_readings
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
        directions = [direction(float(r), thresholds).value for r in rates]

        keep = merged_ts >= merged_ts[-1] - KEEP_US if merged_ts.size else slice(None)
        self._ts_us, self._values = merged_ts[keep], merged_values[keep]
        rows = DeviceRows(
            device_id=self.info.id,
            ts_us=new_ts,
            values=new_values,
            rate_per_min=rates,
            direction=directions,
        )
        before = self.alerts.snapshot()
        if history:
            return PreparedBatch(rows=rows, duplicates=duplicates, before=before)
        try:
            ops, live = self.alerts.on_readings(
                new_ts / US, new_values, now_us / US, (received_us or now_us) / US
            )
        except Exception:  # a fault in alerting must never cost a reading
            log.exception("alert evaluation failed for device %s", self.info.id)
            self.alerts.restore(before)
            ops, live = [], None
        return PreparedBatch(rows=rows, duplicates=duplicates, ops=ops, live=live, before=before)

    def forget(self, ts_us: np.ndarray, prepared: PreparedBatch | None = None) -> None:
        """Drop readings that turned out not to be stored (their write failed)."""
        keep = ~np.isin(self._ts_us, ts_us)
        self._ts_us, self._values = self._ts_us[keep], self._values[keep]
        if prepared is not None and prepared.before is not None:
            self.alerts.restore(prepared.before)
