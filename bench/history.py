"""Benchmark of reading history files (``sensor_ingest.history``): how long a 90-day
export takes to parse before an import starts storing it.

    .venv/bin/python -m bench.history

* ``clarity_90d_ms``: a Dexcom Clarity CSV with 90 days of 5-minute EGVs (25,920 rows) and
  its metadata rows, read in the person's time zone;
* ``tidepool_90d_ms``: a Tidepool JSON export of the same readings in mmol/L.

Yardstick, measured in the same run: ``csv_reader_90d_ms``, Python's ``csv.reader`` alone
over the same CSV text (the floor any CSV parser sits on). Medians of several runs.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sensor_ingest.history import parse

DAYS = 90
START = datetime(2026, 8, 1, tzinfo=UTC)
NOW = START + timedelta(days=DAYS + 1)
HEADER = (
    "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Event Subtype,Patient Info,Device Info,"
    "Source Device ID,Glucose Value (mg/dL),Insulin Value (u),Carb Value (grams),"
    "Duration (hh:mm:ss),Glucose Rate of Change (mg/dL/min),Transmitter Time (Long Integer),"
    "Transmitter ID"
)


def values(n: int) -> list[int]:
    return [110 + (i * 37) % 140 for i in range(n)]


def clarity(n: int) -> str:
    rows = [HEADER, "1,,FirstName,,Alex,,,,,,,,,", "2,,Device,,,Dexcom G7,android G7,,,,,,,"]
    for i, v in enumerate(values(n)):
        ts = (START + timedelta(minutes=5 * i)).strftime("%Y-%m-%dT%H:%M:%S")
        rows.append(f"{i + 3},{ts},EGV,,,,android G7,{v},,,,,{4_000_000 + 300 * i},8AM1EY")
    return "\n".join(rows) + "\n"


def tidepool(n: int) -> str:
    data = [
        {
            "type": "cbg",
            "units": "mmol/L",
            "value": round(v / 18.016, 1),
            "time": (START + timedelta(minutes=5 * i)).isoformat().replace("+00:00", "Z"),
            "deviceId": "DexG7",
        }
        for i, v in enumerate(values(n))
    ]
    return json.dumps(data)


def median_ms(fn: Callable[[], object], repeat: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def main() -> None:
    n = DAYS * 288
    csv_text, json_text = clarity(n), tidepool(n)
    tz = ZoneInfo("Europe/Paris")
    assert len(parse(csv_text, tz, NOW).ts) == n and len(parse(json_text, tz, NOW).ts) == n
    print(f"rows: {n}")
    print(f"csv_reader_90d_ms: {median_ms(lambda: list(csv.reader(io.StringIO(csv_text)))):.1f}")
    print(f"clarity_90d_ms: {median_ms(lambda: parse(csv_text, tz, NOW)):.1f}")
    print(f"tidepool_90d_ms: {median_ms(lambda: parse(json_text, tz, NOW)):.1f}")


if __name__ == "__main__":
    main()
