"""The group-commit writer against a real PostgreSQL: one binary COPY of every group's rows,
stored exactly (values, NULL rates, every trend arrow, microsecond timestamps), and each
group told which of its rows were new."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import numpy as np
import psycopg
import pytest

from algorithms.trend import Direction
from storage import readings
from storage.pools import open_writer_connection
from storage.readings import DIRECTIONS, DeviceRows, ReadingsWriter, copy_payload
from tests.helpers import insert_device

US = 1_000_000
T0 = 1_790_000_000 * US + 123_457  # microseconds survive the round trip
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def test_the_stored_arrows_are_the_algorithms_arrows() -> None:
    assert tuple(d.value for d in Direction) == DIRECTIONS


def test_an_arrow_the_database_does_not_know_is_refused_by_name() -> None:
    g = DeviceRows(uuid.uuid4(), np.array([T0]), np.array([1.0]), np.array([0.0]), ["Sideways"])
    with pytest.raises(ValueError, match="Sideways"):
        copy_payload([g])


@pytest.mark.parametrize("after_stored", [False, True], ids=["de-duplicated", "direct"])
async def test_rows_of_many_groups_are_stored_exactly_and_new_ones_reported(
    database_url: str, db: psycopg.Connection, after_stored: bool, monkeypatch
) -> None:
    direct: list[int] = []  # rows sent straight into `readings`
    payload = readings.direct_copy_payload
    monkeypatch.setattr(
        readings, "direct_copy_payload", lambda gs: direct.append(sum(map(len, gs))) or payload(gs)
    )
    a, b = insert_device(db)[2], insert_device(db)[2]
    n = len(DIRECTIONS)
    first = DeviceRows(
        a,
        T0 + np.arange(n, dtype=np.int64) * 60 * US,
        np.array([39.5 + i * 0.1 for i in range(n)]),
        np.array([np.nan if i % 3 == 0 else -2.5 + i for i in range(n)]),
        list(DIRECTIONS),
        after_stored=after_stored,
    )
    conn = await open_writer_connection(database_url)
    try:
        writer = ReadingsWriter(conn)
        assert [m.tolist() for m in await writer.write([first])] == [[True] * n]
        # Again with two rows of `a` already stored, an empty group and another device.
        again = DeviceRows(a, first.ts_us[-2:] + np.array([0, 30 * US]), np.array([1.0, 2.0]),
                           np.array([0.5, np.nan]), ["Flat", "DoubleUp"])  # fmt: skip
        empty = DeviceRows(b, np.zeros(0, np.int64), np.zeros(0), np.zeros(0), [])
        other = DeviceRows(b, first.ts_us[:2], np.array([7.0, 8.0]), np.array([1.0, 2.0]),
                           ["SingleDown", "Flat"], after_stored=after_stored)  # fmt: skip
        masks = await writer.write([again, empty, other])
        assert [m.tolist() for m in masks] == [[False, True], [True, True]]
        # Straight in: the first write and `other` (`again` repeats a row: de-duplicated).
        assert direct == ([n, 2] if after_stored else [])
    finally:
        await conn.close()
    got = db.execute(
        "SELECT ts, value, rate_per_min, direction FROM readings WHERE device_id = %s ORDER BY ts",
        (a,),
    ).fetchall()
    assert len(got) == n + 1
    for i, (ts, value, rate, arrow) in enumerate(got[:n]):
        assert (ts - EPOCH) // timedelta(microseconds=1) == first.ts_us[i]
        assert value == first.values[i]  # float8: exact
        if i % 3 == 0:
            assert rate is None  # not computable is NULL, not NaN
        else:
            assert rate == pytest.approx(first.rate_per_min[i], abs=1e-6)
        assert arrow == DIRECTIONS[i]
    # The already stored row kept its first value; the new one came in.
    assert got[n - 2][1] == first.values[n - 2] and got[n][1:] == (2.0, None, "DoubleUp")
    assert db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (b,)).fetchone() == (2,)


async def test_a_row_stored_meanwhile_by_another_writer_is_a_duplicate_not_an_error(
    database_url: str, db: psycopg.Connection
) -> None:
    """Rows the actor believes newer than anything stored go straight into ``readings``; one
    stored meanwhile (by an import, another shard) makes the commit fall back to the
    de-duplicating write: the same rows stored once, the right ones reported new."""
    a, b = insert_device(db)[2], insert_device(db)[2]
    ts = T0 + np.arange(3, dtype=np.int64) * 60 * US
    db.execute(
        "INSERT INTO readings (device_id, ts, value) VALUES (%s, %s, 99)",
        (a, EPOCH + timedelta(microseconds=int(ts[1]))),
    )
    groups = [
        DeviceRows(a, ts, np.array([1.0, 2.0, 3.0]), np.full(3, np.nan), ["Flat"] * 3,
                   after_stored=True),
        DeviceRows(b, ts, np.array([4.0, 5.0, 6.0]), np.full(3, 0.5), ["Flat"] * 3,
                   after_stored=True),
    ]  # fmt: skip
    conn = await open_writer_connection(database_url)
    try:
        masks = await ReadingsWriter(conn).write(groups)
    finally:
        await conn.close()
    assert [m.tolist() for m in masks] == [[True, False, True], [True, True, True]]
    stored = db.execute(
        "SELECT device_id = %s, value FROM readings WHERE device_id IN (%s, %s) ORDER BY 1, ts",
        (a, a, b),
    ).fetchall()
    assert stored == [(False, 4.0), (False, 5.0), (False, 6.0), (True, 1.0), (True, 99.0),
                      (True, 3.0)]  # fmt: skip
