"""DeviceActor: validation, de-duplication and trend over a device's stream (no Ray, no DB)."""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from actors.device import KEEP_US, BatchRejected, DeviceActor
from storage.devices import DeviceInfo
from storage.readings import StoredReadings

US = 1_000_000
NOW_US = 1_800_000_000 * US


def actor(kind: str = "glucose", history: StoredReadings | None = None) -> DeviceActor:
    info = DeviceInfo(uuid.uuid4(), uuid.uuid4(), kind, 300)
    empty = StoredReadings(np.zeros(0, np.int64), np.zeros(0))
    return DeviceActor(info, history or empty)


def minutes(*m: float) -> np.ndarray:
    return NOW_US - (np.array(m) * 60 * US).astype(np.int64)


def test_first_readings_have_no_trend_then_the_arrow_follows_the_slope() -> None:
    a = actor()
    ts = minutes(30, 25, 20, 15, 10, 5, 0)
    values = 200 - 3.5 * (30 - np.array([30, 25, 20, 15, 10, 5, 0]))
    prepared = a.accept(ts, values, NOW_US)
    assert prepared.duplicates == 0
    assert prepared.rows.direction[:2] == ["NOT COMPUTABLE"] * 2
    assert np.allclose(prepared.rows.rate_per_min[3:], -3.5)
    assert prepared.rows.direction[-1] == "DoubleDown"


def test_out_of_order_batch_is_stored_sorted_and_trended_in_time_order() -> None:
    a = actor()
    ts = minutes(0, 20, 10, 15, 5)
    values = np.array([120.0, 100.0, 110.0, 105.0, 115.0])  # +1 mg/dL/min
    rows = a.accept(ts, values, NOW_US).rows
    assert list(rows.ts_us) == sorted(ts)
    assert list(rows.values) == [100, 105, 110, 115, 120]
    assert rows.direction[-1] == "FortyFiveUp"


def test_resent_and_repeated_readings_are_duplicates() -> None:
    a = actor()
    ts = minutes(10, 5, 0)
    a.accept(ts, np.array([100.0, 101, 102]), NOW_US)
    again = a.accept(
        np.concatenate((ts, minutes(-1, -1))), np.array([1e2, 1e2, 1e2, 99, 98]), NOW_US
    )
    assert again.duplicates == 4  # three re-sent, one repeated within the batch
    assert list(again.rows.values) == [99.0]  # the first of a repeated timestamp wins


def test_history_from_the_database_gives_a_trend_to_the_first_new_reading() -> None:
    history = StoredReadings(minutes(20, 15, 10, 5), np.array([140.0, 130, 120, 110]))
    rows = actor(history=history).accept(minutes(0), np.array([100.0]), NOW_US).rows
    assert rows.rate_per_min[0] == pytest.approx(-2.0)
    assert rows.direction == ["SingleDown"]


def test_memory_is_bounded_to_the_recent_window() -> None:
    a = actor("temperature")
    ts = NOW_US - np.arange(10_000, 0, -1, dtype=np.int64) * 60 * US
    a.accept(ts, np.full(ts.size, 36.6), NOW_US)
    assert a.window_size == KEEP_US // (60 * US) + 1


@pytest.mark.parametrize(
    ("kind", "value", "field"),
    [("glucose", 601, "value"), ("glucose", 19, "value"), ("temperature", 46, "value")],
)
def test_invalid_reading_rejects_the_batch_and_leaves_state_unchanged(kind, value, field) -> None:
    a = actor(kind)
    ok = 100.0 if kind == "glucose" else 37.0
    a.accept(minutes(10), np.array([ok]), NOW_US)
    with pytest.raises(BatchRejected) as caught:
        a.accept(minutes(5, 0), np.array([ok, value]), NOW_US)
    assert [(p.index, p.field) for p in caught.value.problems] == [(1, field)]
    assert a.window_size == 1
    assert a.accept(minutes(5), np.array([ok]), NOW_US).duplicates == 0  # not remembered


def test_future_timestamps_beyond_five_minutes_are_rejected() -> None:
    a = actor()
    a.accept(minutes(-4.9), np.array([100.0]), NOW_US)
    with pytest.raises(BatchRejected) as caught:
        a.accept(minutes(-5.1), np.array([100.0]), NOW_US)
    assert caught.value.problems[0].field == "ts"


def test_forget_removes_unstored_readings() -> None:
    a = actor()
    ts = minutes(10, 5)
    a.accept(ts, np.array([100.0, 101]), NOW_US)
    a.forget(ts[1:])
    assert a.accept(ts, np.array([100.0, 101]), NOW_US).duplicates == 1


def test_history_is_stored_and_trended_but_evaluates_no_alert_rule() -> None:
    ts = minutes(*range(60, -1, -5))
    values = np.linspace(130, 45, ts.size)  # down into urgent low
    live, imported = actor(), actor()
    evaluated = live.accept(ts, values, NOW_US)
    assert any(op.rule == "urgent_low" and op.type == "fired" for op in evaluated.ops)
    prepared = imported.accept(ts, values, NOW_US, history=True)
    assert prepared.ops == [] and prepared.live is None
    assert len(prepared.rows) == ts.size
    assert prepared.rows.direction == evaluated.rows.direction  # trended all the same
    assert prepared.rows.direction[-1] == "FortyFiveDown"  # 85 mg/dL in an hour
    assert imported.alerts.head_s is None  # the live stream starts fresh after an import
