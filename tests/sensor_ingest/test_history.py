"""History file parsers: each format's sample, time zones, units, and the exact error and
line for what cannot be read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from sensor_ingest.history import HistoryFileError, detect, parse

DATA = Path(__file__).parent.parent / "data" / "history"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
UTC_ZONE = ZoneInfo("UTC")


def sample(name: str) -> str:
    return (DATA / name).read_text()


@pytest.mark.parametrize(
    ("name", "fmt", "readings", "skipped", "ignored"),
    [
        ("clarity.csv", "dexcom-clarity", 21, 3, 9),  # Low, Low, High; metadata, carbs, insulin
        ("libreview.csv", "libreview", 14, 0, 2),  # 12 history + 2 scans; a note, food
        ("nightscout-entries.json", "nightscout", 12, 1, 1),  # sgv 5 (an error code); an mbg
        ("tidepool.json", "tidepool", 12, 0, 2),  # 10 cbg + 2 smbg; a basal, a bolus
    ],
)
def test_each_sample_reads_with_the_right_counts(
    name: str, fmt: str, readings: int, skipped: int, ignored: int
) -> None:
    history = parse(sample(name), UTC_ZONE, NOW)
    assert (history.format, len(history.ts), len(history.skipped), history.ignored) == (
        fmt,
        readings,
        skipped,
        ignored,
    )
    assert len(history.mgdl) == len(history.lines) == readings
    assert all(t.tzinfo is not None for t in history.ts)


def test_clarity_rows_keep_their_line_numbers_and_reasons() -> None:
    history = parse(sample("clarity.csv"), UTC_ZONE, NOW)
    lines = sample("clarity.csv").splitlines()
    assert [s.line for s in history.skipped] == [
        n for n, text in enumerate(lines, 1) if ",Low," in text or ",High," in text
    ][-3:]
    assert "beyond the sensor's reporting range" in history.skipped[0].reason
    first = lines[history.lines[0] - 1].split(",")
    assert history.mgdl[0] == float(first[7]) and first[2] == "EGV"


def test_wall_clock_times_are_read_in_the_persons_time_zone() -> None:
    paris = parse(sample("clarity.csv"), ZoneInfo("Europe/Paris"), NOW)
    utc = parse(sample("clarity.csv"), UTC_ZONE, NOW)
    assert [(u - p).total_seconds() for u, p in zip(utc.ts, paris.ts, strict=True)] == [3600] * 21
    libre = parse(sample("libreview.csv"), ZoneInfo("America/New_York"), NOW)
    assert libre.ts[0] == datetime(2026, 11, 21, 5, 7, tzinfo=UTC)  # 00:07 EST


def test_units_become_mg_per_dl() -> None:
    tidepool = parse(sample("tidepool.json"), UTC_ZONE, NOW)
    assert tidepool.mgdl[0] == round(6.5 * 18.016, 1)
    mmol = sample("clarity.csv").replace("Glucose Value (mg/dL)", "Glucose Value (mmol/L)")
    mmol = mmol.replace(",142,", ",7.9,")
    assert parse(mmol, UTC_ZONE, NOW).mgdl[0] == pytest.approx(7.9 * 18.016)


CLARITY_HEAD = "Index,Timestamp (YYYY-MM-DDThh:mm:ss),Event Type,Glucose Value (mg/dL)\n"
LIBRE_HEAD = (
    "Glucose Data,Generated on,11-29-2026 09:14 UTC\n"
    "Device,Serial Number,Device Timestamp,Record Type,Historic Glucose mg/dL,Scan Glucose mg/dL\n"
)


@pytest.mark.parametrize(
    ("text", "line", "message"),
    [
        (
            CLARITY_HEAD + "1,2026-11-20T06:02:41,EGV,abc\n",
            2,
            "Glucose Value: 'abc' is not a number",
        ),
        (CLARITY_HEAD + "1,20/11/2026 06:02,EGV,100\n", 2, "Timestamp: '20/11/2026 06:02'"),
        ("Index,Timestamp,Event Type\n1,2026-11-20T06:02:41,EGV\n", 0, "unrecognised file"),
        (LIBRE_HEAD + "L,1,11-21-2026 00:07,0,\n", 3, "Historic Glucose mg/dL: empty"),
        (LIBRE_HEAD + "L,1,2026/11/21 0:07,0,100\n", 3, "Device Timestamp"),
        ('[{"type": "sgv", "sgv": 100, "date": "yesterday"}]', 1, "date: must be ms"),
        ('[{"type": "sgv", "date": 1764000000000, "sgv": 100}, 3]', 2, "entry is not an object"),
        (
            '[{"type": "cbg", "time": "2026-11-23T12:00:00", "value": 6, "units": "mmol/L"}]',
            1,
            "has no UTC offset",
        ),
        (
            '[{"type": "cbg", "time": "2026-11-23T12:00:00Z", "value": 6, "units": "g/L"}]',
            1,
            "units: 'g/L'",
        ),
        ('[{"type": "sgv", "date": 1764000000000, "sgv": 100}', 1, "not valid JSON"),
        ('{"hello": 1}', 0, "expected a JSON array"),
    ],
)
def test_unreadable_files_name_the_line_and_the_problem(text: str, line: int, message: str) -> None:
    with pytest.raises(HistoryFileError) as caught:
        parse(text, UTC_ZONE, NOW)
    assert caught.value.line == line
    assert message in caught.value.message


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("1,2026-11-20T06:02:41,EGV,700\n", "700 mg/dL is outside the glucose sensor range"),
        ("1,2026-11-20T06:02:41,EGV,12\n", "12 mg/dL is outside"),
        ("1,2026-12-20T06:02:41,EGV,100\n", "time is in the future"),
        ("1,1999-12-20T06:02:41,EGV,100\n", "time is before 2000"),
        ("1,2026-11-20T06:02:41,EGV,High\n", "'High': beyond the sensor's reporting range"),
    ],
)
def test_rows_vigil_will_not_store_are_reported_not_fatal(row: str, reason: str) -> None:
    history = parse(CLARITY_HEAD + row + "2,2026-11-20T06:07:41,EGV,100\n", UTC_ZONE, NOW)
    assert [(s.line, reason in s.reason) for s in history.skipped] == [(2, True)]
    assert history.lines == [3]


def test_detection_reads_the_content_not_the_name() -> None:
    assert detect("\n" + sample("nightscout-entries.json")) == "nightscout"
    assert detect(sample("tidepool.json")) == "tidepool"
    assert parse("\ufeff" + sample("libreview.csv"), UTC_ZONE, NOW).format == "libreview"
