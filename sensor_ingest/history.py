"""History files of other systems -> glucose readings: pure functions, no I/O, no clock.

A person moving to Vigil brings years of readings as a vendor export: Dexcom Clarity CSV,
LibreView CSV, Nightscout entries JSON or a Tidepool export JSON (cbg / smbg). ``parse``
detects the format and returns the readings with, for each row Vigil will not store (a
value outside the sensor's range, "Low" / "High", a time in the future), its line and why.
A file that cannot be read as its format raises ``HistoryFileError`` naming the line:
the import then stores nothing. Lives here, beside the other ways sensor data gets in;
it needs only ``algorithms`` (for units and the sensor's range).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from algorithms.sensors import MGDL_PER_MMOLL, SensorKind, spec_for

MAX_FUTURE = timedelta(minutes=5)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_SPEC = spec_for(SensorKind.GLUCOSE)
_CLARITY_TIME = ("%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M")


class HistoryFileError(ValueError):
    """The file is not readable as its format; ``line`` is 1-based (0: the whole file)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}" if line else message)
        self.line = line
        self.message = message


@dataclass(frozen=True, slots=True)
class Skipped:
    line: int  # 1-based line (CSV) or 1-based item number (JSON arrays)
    reason: str


@dataclass(slots=True)
class History:
    format: str
    ts: list[datetime] = field(default_factory=list)  # aware, UTC
    mgdl: list[float] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)
    skipped: list[Skipped] = field(default_factory=list)
    ignored: int = 0  # rows of other kinds (events, alerts, insulin, ...), not readings

    def add(self, line: int, ts: datetime, mgdl: float, now: datetime) -> None:
        """Keep the reading, or record why not."""
        if not math.isfinite(mgdl) or not _SPEC.min_value <= mgdl <= _SPEC.max_value:
            self.skipped.append(
                Skipped(line, f"{mgdl:g} mg/dL is outside the glucose sensor range "
                        f"{_SPEC.min_value:g}-{_SPEC.max_value:g} mg/dL")
            )  # fmt: skip
        elif ts > now + MAX_FUTURE:
            self.skipped.append(Skipped(line, "time is in the future"))
        elif ts < EARLIEST:
            self.skipped.append(Skipped(line, "time is before 2000"))
        else:
            self.ts.append(ts)
            self.mgdl.append(mgdl)
            self.lines.append(line)


# --- helpers -------------------------------------------------------------------------


def _number(text: str, line: int, column: str) -> float:
    try:
        x = float(text.strip().replace(",", "."))
    except ValueError:
        raise HistoryFileError(line, f"{column}: {text!r} is not a number") from None
    if not math.isfinite(x):
        raise HistoryFileError(line, f"{column}: {text!r} is not a number")
    return x


def _local(text: str, formats: tuple[str, ...], tz: ZoneInfo, line: int, column: str) -> datetime:
    """A wall-clock time of the person's time zone (vendors export local times)."""
    if formats is _CLARITY_TIME and len(text) == 19:  # the usual ISO shape: the fast path
        try:
            return datetime.fromisoformat(text).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            pass
    for fmt in formats:
        try:
            return datetime.strptime(text.strip(), fmt).replace(tzinfo=tz).astimezone(UTC)
        except ValueError:
            continue
    raise HistoryFileError(line, f"{column}: {text!r} is not a time like {formats[0]}")


def _iso(value: Any, line: int, column: str) -> datetime:
    if not isinstance(value, str):
        raise HistoryFileError(line, f"{column}: must be an ISO 8601 time")
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise HistoryFileError(line, f"{column}: {value!r} is not an ISO 8601 time") from None
    if ts.tzinfo is None:
        raise HistoryFileError(line, f"{column}: {value!r} has no UTC offset")
    return ts.astimezone(UTC)


def _rows(text: str) -> Iterator[tuple[int, list[str]]]:
    """CSV rows with their 1-based line numbers."""
    reader = csv.reader(io.StringIO(text))
    try:
        for row in reader:
            yield reader.line_num, row
    except csv.Error as exc:
        raise HistoryFileError(reader.line_num, f"not valid CSV ({exc})") from None


def _column(header: list[str], names: tuple[str, ...]) -> tuple[int, float] | None:
    """(index, mg/dL per unit) of the first of ``names`` in the header."""
    for i, name in enumerate(header):
        for wanted in names:
            if name.strip().lower() == wanted.lower():
                return i, MGDL_PER_MMOLL if "mmol" in wanted.lower() else 1.0
    return None


def _cell(row: list[str], index: int) -> str:
    return row[index].strip() if index < len(row) else ""


# --- Dexcom Clarity CSV ----------------------------------------------------------------


def parse_clarity(text: str, tz: ZoneInfo, now: datetime) -> History:
    """Clarity's export: a header row, metadata rows (patient, device, alert settings:
    no timestamp), then one row per event; readings are ``Event Type`` EGV, with the value
    in ``Glucose Value (mg/dL)`` (or mmol/L), "Low" below 40 and "High" above 400."""
    out = History("dexcom-clarity")
    rows = _rows(text)
    _, header = next(rows)
    ts_col = next((i for i, h in enumerate(header) if h.strip().startswith("Timestamp")), None)
    type_col = next((i for i, h in enumerate(header) if h.strip() == "Event Type"), None)
    value = _column(header, ("Glucose Value (mg/dL)", "Glucose Value (mmol/L)"))
    if ts_col is None or type_col is None or value is None:
        raise HistoryFileError(1, "missing the Timestamp, Event Type or Glucose Value column")
    value_col, scale = value
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue
        if _cell(row, type_col) != "EGV":
            out.ignored += 1
            continue
        ts = _local(_cell(row, ts_col), _CLARITY_TIME, tz, line, "Timestamp")
        raw = _cell(row, value_col)
        if raw.lower() in ("low", "high"):
            out.skipped.append(Skipped(line, f"{raw!r}: beyond the sensor's reporting range"))
            continue
        out.add(line, ts, _number(raw, line, "Glucose Value") * scale, now)
    return out


# --- LibreView CSV ---------------------------------------------------------------------

_LIBRE_TIME = ("%m-%d-%Y %H:%M", "%m-%d-%Y %I:%M %p", "%d-%m-%Y %H:%M", "%Y-%m-%d %H:%M")
_LIBRE_KINDS = {"0": "Historic Glucose", "1": "Scan Glucose"}


def parse_libreview(text: str, tz: ZoneInfo, now: datetime) -> History:
    """LibreView's export: a title line ("Glucose Data,Generated on,..."), a header, then
    records; ``Record Type`` 0 is the 15-minute history, 1 a scan, others notes, insulin,
    food (ignored). Times are the reader's local ``Device Timestamp``."""
    out = History("libreview")
    rows = _rows(text)
    next(rows)  # the title line
    line, header = next(rows, (2, []))
    ts_col = next((i for i, h in enumerate(header) if h.strip() == "Device Timestamp"), None)
    type_col = next((i for i, h in enumerate(header) if h.strip() == "Record Type"), None)
    columns = {
        "0": _column(header, ("Historic Glucose mg/dL", "Historic Glucose mmol/L")),
        "1": _column(header, ("Scan Glucose mg/dL", "Scan Glucose mmol/L")),
    }
    if ts_col is None or type_col is None or columns["0"] is None:
        raise HistoryFileError(line, "missing Device Timestamp, Record Type or Historic Glucose")
    for line, row in rows:
        if not any(c.strip() for c in row):
            continue
        column = columns.get(_cell(row, type_col))
        if column is None:
            out.ignored += 1
            continue
        ts = _local(_cell(row, ts_col), _LIBRE_TIME, tz, line, "Device Timestamp")
        raw = _cell(row, column[0])
        if not raw:
            raise HistoryFileError(line, f"{header[column[0]].strip()}: empty")
        out.add(line, ts, _number(raw, line, header[column[0]].strip()) * column[1], now)
    return out


# --- JSON: Nightscout entries, Tidepool ------------------------------------------------


def parse_nightscout(items: list[Any], now: datetime) -> History:
    """A Nightscout ``entries.json`` download: sgv entries (``date`` in ms, ``sgv`` mg/dL);
    mbg and cal entries are not sensor readings (ignored)."""
    out = History("nightscout")
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise HistoryFileError(n, "entry is not an object")
        if item.get("type", "sgv") != "sgv":
            out.ignored += 1
            continue
        date, sgv = item.get("date"), item.get("sgv")
        if isinstance(date, bool) or not isinstance(date, int | float):
            raise HistoryFileError(n, "date: must be ms since the epoch")
        if isinstance(sgv, bool) or not isinstance(sgv, int | float):
            raise HistoryFileError(n, "sgv: must be a number")
        out.add(n, _EPOCH + timedelta(milliseconds=date), float(sgv), now)
    return out


def parse_tidepool(items: list[Any], now: datetime) -> History:
    """A Tidepool export: data objects; ``cbg`` (CGM) and ``smbg`` (meter) are readings
    with ``time`` (ISO 8601, UTC), ``value`` and ``units`` (mg/dL or mmol/L)."""
    out = History("tidepool")
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict):
            raise HistoryFileError(n, "datum is not an object")
        if item.get("type") not in ("cbg", "smbg"):
            out.ignored += 1
            continue
        units, value = item.get("units"), item.get("value")
        if units not in ("mg/dL", "mmol/L"):
            raise HistoryFileError(n, f"units: {units!r} is not mg/dL or mmol/L")
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise HistoryFileError(n, "value: must be a number")
        scale = MGDL_PER_MMOLL if units == "mmol/L" else 1.0
        out.add(n, _iso(item.get("time"), n, "time"), round(value * scale, 1), now)
    return out


def _json_items(text: str) -> list[Any]:
    try:
        body = json.loads(text)
    except ValueError as exc:
        raise HistoryFileError(getattr(exc, "lineno", 0), f"not valid JSON ({exc})") from None
    if isinstance(body, dict):  # some exports wrap the array
        body = body.get("data", body.get("entries"))
    if not isinstance(body, list):
        raise HistoryFileError(0, "expected a JSON array of entries or data objects")
    return body


# --- detection -------------------------------------------------------------------------

FORMATS = ("dexcom-clarity", "libreview", "nightscout", "tidepool")


def detect(text: str) -> str:
    """The format of a file, from its content; HistoryFileError when none fits."""
    head = text.lstrip()[:4000]
    if head[:1] in ("[", "{"):
        items = _json_items(text)
        first = next((i for i in items if isinstance(i, dict)), {})
        if "sgv" in first or first.get("type") in ("sgv", "mbg", "cal"):
            return "nightscout"
        if "time" in first and "type" in first:
            return "tidepool"
        raise HistoryFileError(0, "JSON that is neither Nightscout entries nor a Tidepool export")
    first_lines = head.splitlines()[:3]
    if first_lines and "Event Type" in first_lines[0] and "Glucose Value" in first_lines[0]:
        return "dexcom-clarity"
    if any("Historic Glucose" in line for line in first_lines[:2]):
        return "libreview"
    raise HistoryFileError(
        0, "unrecognised file: expected a Dexcom Clarity or LibreView CSV export,"
        " Nightscout entries JSON or a Tidepool export JSON"
    )  # fmt: skip


def parse(text: str, tz: ZoneInfo, now: datetime) -> History:
    """Detect the format and read the file. ``tz``: the person's time zone (CSV exports
    hold wall-clock times); ``now``: readings after it (+5 min) are refused."""
    text = text.removeprefix("\ufeff")
    kind = detect(text)
    parsers: dict[str, Callable[[], History]] = {
        "dexcom-clarity": lambda: parse_clarity(text, tz, now),
        "libreview": lambda: parse_libreview(text, tz, now),
        "nightscout": lambda: parse_nightscout(_json_items(text), now),
        "tidepool": lambda: parse_tidepool(_json_items(text), now),
    }
    return parsers[kind]()
