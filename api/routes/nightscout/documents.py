"""Nightscout documents <-> Vigil records: pure functions, no I/O.

Nightscout clients send loosely typed documents carrying fields of their own. What Vigil
uses is validated here (a clear ``DocumentError`` naming the field); everything else of a
treatment or devicestatus is kept as sent, within size and nesting bounds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from algorithms.sensors import SensorKind, spec_for
from algorithms.trend import Direction
from api.batch_parse import EPOCH

MAX_DOCUMENTS = 1000  # per POST
MAX_BODY_BYTES = 2_000_000
MAX_DOCUMENT_BYTES = 64_000
MAX_DEPTH = 8
MAX_COUNT = 10_000
DEFAULT_COUNT = 10
ENTRY_TYPES = ("sgv", "mbg", "cal")
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)
# Nightscout's numeric trend for each direction (0 none, 8 not computable).
TREND = {
    Direction.DOUBLE_UP: 1,
    Direction.SINGLE_UP: 2,
    Direction.FORTY_FIVE_UP: 3,
    Direction.FLAT: 4,
    Direction.FORTY_FIVE_DOWN: 5,
    Direction.SINGLE_DOWN: 6,
    Direction.DOUBLE_DOWN: 7,
    Direction.NOT_COMPUTABLE: 8,
}


class DocumentError(ValueError):
    """A document Vigil cannot take; ``field`` names where (``entries[3].sgv``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# --- bodies ---------------------------------------------------------------------------


def depth(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth(v) for v in value), default=0)
    return 0


def parse_body(raw: bytes, what: str) -> list[dict[str, Any]]:
    """The documents of a POST body (one object or an array), bounded in size and depth."""
    if len(raw) > MAX_BODY_BYTES:
        raise DocumentError(what, f"body larger than {MAX_BODY_BYTES} bytes")
    try:
        body = json.loads(raw, parse_constant=_no_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DocumentError(what, f"not valid JSON ({exc})") from None
    docs = body if isinstance(body, list) else [body]
    if len(docs) > MAX_DOCUMENTS:
        raise DocumentError(what, f"{len(docs)} documents; at most {MAX_DOCUMENTS} per request")
    for i, doc in enumerate(docs):
        where = f"{what}[{i}]"
        if not isinstance(doc, dict):
            raise DocumentError(where, "must be a JSON object")
        if depth(doc) > MAX_DEPTH:
            raise DocumentError(where, f"nested deeper than {MAX_DEPTH} levels")
        if len(json.dumps(doc)) > MAX_DOCUMENT_BYTES:
            raise DocumentError(where, f"larger than {MAX_DOCUMENT_BYTES} bytes")
        if "\\u0000" in json.dumps(doc):
            raise DocumentError(where, "must not contain NUL characters")
    return docs


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a number")


def number(doc: dict, key: str, where: str, lo: float, hi: float) -> float | None:
    """A numeric field within ``[lo, hi]`` (numbers sent as strings are accepted, as
    Nightscout does); None when absent or empty."""
    value = doc.get(key)
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise DocumentError(f"{where}.{key}", "must be a number")
    try:
        x = float(value)
    except (TypeError, ValueError):
        raise DocumentError(f"{where}.{key}", f"must be a number, not {value!r}") from None
    if not math.isfinite(x) or not lo <= x <= hi:
        raise DocumentError(f"{where}.{key}", f"{x:g} is outside {lo:g}-{hi:g}")
    return x


# --- time -------------------------------------------------------------------------------


def ms(ts: datetime) -> int:
    return (ts - EPOCH) // timedelta(milliseconds=1)


def from_ms(value: float) -> datetime:
    return EPOCH + timedelta(milliseconds=value)


def iso(ts: datetime) -> str:
    """Nightscout's dateString / created_at: UTC with milliseconds and a Z."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_time(value: Any, where: str) -> datetime:
    """Milliseconds since the epoch (number or digits) or an ISO 8601 string."""
    if isinstance(value, bool) or value is None:
        raise DocumentError(where, "must be a time (ms since the epoch or ISO 8601)")
    if isinstance(value, int | float) or (isinstance(value, str) and value.isdigit()):
        x = float(value)
        if not math.isfinite(x) or not 0 <= x < 1e14:
            raise DocumentError(where, f"{value!r} is not a time in ms")
        return from_ms(x)
    if not isinstance(value, str):
        raise DocumentError(where, "must be a time (ms since the epoch or ISO 8601)")
    try:
        ts = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise DocumentError(where, f"{value!r} is not an ISO 8601 time") from None
    return ts if ts.tzinfo else ts.replace(tzinfo=UTC)


def document_time(doc: dict, where: str, keys: tuple[str, ...], now: datetime) -> datetime:
    """The first of ``keys`` present, within 2000 .. now + 1 day."""
    key = next((k for k in keys if doc.get(k) not in (None, "")), None)
    if key is None:
        raise DocumentError(f"{where}.{keys[0]}", "is required")
    ts = parse_time(doc[key], f"{where}.{key}")
    if ts < EARLIEST or ts > now + MAX_AHEAD:
        raise DocumentError(f"{where}.{key}", "must be between 2000 and tomorrow")
    return ts


# --- entries --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntryIn:
    index: int  # in the posted array
    type: str
    ts: datetime
    value: float | None  # sgv / mbg in mg/dL; None for cal
    doc: dict[str, Any]


def entry_in(doc: dict, index: int, now: datetime) -> EntryIn:
    where = f"entries[{index}]"
    kind = doc.get("type", "sgv")
    if kind not in ENTRY_TYPES:
        raise DocumentError(f"{where}.type", f"{kind!r} is not one of {', '.join(ENTRY_TYPES)}")
    ts = document_time(doc, where, ("date", "dateString", "sysTime"), now)
    spec = spec_for(SensorKind.GLUCOSE)
    value = None
    if kind in ("sgv", "mbg"):
        value = number(doc, kind, where, spec.min_value, spec.max_value)
        if value is None:
            raise DocumentError(f"{where}.{kind}", "is required")
    else:
        for key in ("slope", "intercept", "scale"):
            number(doc, key, where, -1e9, 1e9)
    return EntryIn(index, kind, ts, value, doc)


def entry_id(ts: datetime, serial: str) -> str:
    """A stable 24-hex id (a Mongo ObjectId's length) for a reading: its time in ms, then
    a digest of the device serial; the id leads back to the reading."""
    return f"{ms(ts):012x}" + hashlib.sha1(serial.encode()).hexdigest()[:12]


def id_time(entry_id_: str) -> datetime | None:
    """The time encoded in an ``entry_id``; None when it is not one."""
    if not re.fullmatch(r"[0-9a-f]{24}", entry_id_):
        return None
    return from_ms(int(entry_id_[:12], 16))


def sgv_out(row: dict) -> dict[str, Any]:
    """A stored reading as Nightscout's sgv entry."""
    direction = Direction(row["direction"]) if row["direction"] else Direction.NOT_COMPUTABLE
    ts = row["ts"]
    return {
        "_id": entry_id(ts, row["serial"]),
        "type": "sgv",
        "sgv": round(row["value"]),
        "date": ms(ts),
        "dateString": iso(ts),
        "sysTime": iso(ts),
        "direction": direction.value,
        "trend": TREND[direction],
        "device": f"vigil:{row['serial']}",
        "noise": 1,
        "utcOffset": 0,
        "mills": ms(ts),
    }


def stored_entry_out(row: dict, doc: dict) -> dict[str, Any]:
    """An mbg / cal entry as it was sent, with its id and normalised times."""
    ts = row["date"]
    return {**doc, "_id": str(row["id"]), "type": row["type"], "date": ms(ts),
            "dateString": iso(ts), "mills": ms(ts)}  # fmt: skip


# --- treatments -------------------------------------------------------------------------


def treatment_fields(doc: dict, index: int, now: datetime) -> dict[str, Any]:
    """The Vigil event of a treatment: carbs -> meal, insulin -> insulin, Exercise,
    Note / Announcement -> note, anything else -> custom (its document is kept whole)."""
    where = f"treatments[{index}]"
    ts = document_time(doc, where, ("created_at", "date", "mills", "timestamp"), now)
    event_type = doc.get("eventType") or "<none>"
    if not isinstance(event_type, str) or len(event_type) > 100:
        raise DocumentError(f"{where}.eventType", "must be a text of at most 100 characters")
    carbs = number(doc, "carbs", where, 0, 500)
    insulin = number(doc, "insulin", where, 0, 100)
    duration = number(doc, "duration", where, 0, 1440)
    notes = doc.get("notes")
    if notes is not None and (not isinstance(notes, str) or len(notes) > 2000):
        raise DocumentError(f"{where}.notes", "must be a text of at most 2000 characters")
    fields = {"ts": ts, "end_ts": None, "note": notes or None}
    if carbs:
        return {**fields, "kind": "meal", "details": {"carbs_g": carbs}}
    if insulin:
        return {**fields, "kind": "insulin", "details": {"units": insulin, "insulin_type": "rapid"}}
    if event_type == "Exercise" and duration:
        end = ts + timedelta(minutes=duration)
        details = {"type": "exercise", "duration_min": duration, "intensity": "moderate"}
        return {**fields, "kind": "exercise", "end_ts": end, "details": details}
    if event_type in ("Note", "Announcement", "Question") and notes:
        return {**fields, "kind": "note", "details": {}}
    other: dict[str, Any] = {"name": event_type}
    if duration is not None:
        other |= {"value": duration, "unit": "min"}
    return {**fields, "kind": "custom", "details": other}


def treatment_key(doc: dict, fields: dict) -> str:
    """Idempotency: a client's own id when it sends one, else event type and time."""
    for key in ("identifier", "_id", "uuid", "NSCLIENT_ID", "pumpId"):
        if isinstance(doc.get(key), str | int) and str(doc[key]):
            return f"ns:{key}:{str(doc[key])[:150]}"
    return f"ns:{doc.get('eventType', '')}:{ms(fields['ts'])}"


_SYNTHESISED = {
    "meal": lambda d: {"eventType": "Carb Correction", "carbs": d.get("carbs_g")},
    "insulin": lambda d: {"eventType": "Correction Bolus", "insulin": d.get("units")},
    "exercise": lambda d: {"eventType": "Exercise", "duration": d.get("duration_min")},
    "note": lambda d: {"eventType": "Note"},
}


def treatment_out(row: dict) -> dict[str, Any]:
    """An event as a Nightscout treatment: the document as sent when it came through the
    site, otherwise built from the event."""
    ts = row["ts"]
    doc = row["nightscout"]
    if doc is None:
        make = _SYNTHESISED.get(row["kind"])
        details = row["details"]
        doc = make(details) if make else {"eventType": details.get("name") or row["kind"]}
        doc |= {"enteredBy": "vigil"}
        if row["note"]:
            doc["notes"] = row["note"]
    return {**doc, "_id": str(row["id"]), "created_at": iso(ts), "mills": ms(ts)}


def devicestatus_out(row: dict, doc: dict) -> dict[str, Any]:
    return {**doc, "_id": str(row["id"]), "created_at": iso(row["date"]), "mills": ms(row["date"])}


# --- queries ----------------------------------------------------------------------------

_FIND = re.compile(r"^find\[(\w+)\](?:\[\$(gte|lte|gt|lt|eq)\])?$")


@dataclass(frozen=True, slots=True)
class Query:
    lo: datetime | None = None
    lo_inclusive: bool = True
    hi: datetime | None = None
    hi_inclusive: bool = True
    types: tuple[str, ...] | None = None
    count: int = DEFAULT_COUNT


def parse_query(params: list[tuple[str, str]], time_fields: tuple[str, ...]) -> Query:
    """``find[<time field>][$gte|$gt|$lte|$lt|$eq]``, ``find[type]`` and ``count``, as
    Nightscout's v1 API takes them; anything else in ``find`` is refused, naming it."""
    q: dict[str, Any] = {}
    for key, value in params:
        if key == "count":
            if not value.isdigit() or int(value) < 1:
                raise DocumentError("count", f"{value!r} is not a positive whole number")
            q["count"] = min(int(value), MAX_COUNT)
            continue
        match = _FIND.match(key)
        if match is None:
            continue  # token, secret and Nightscout options that do not filter
        field, op = match.groups()
        if field == "type" and op in (None, "eq"):
            if value not in ENTRY_TYPES:
                raise DocumentError(key, f"{value!r} is not one of {', '.join(ENTRY_TYPES)}")
            q["types"] = (value,)
        elif field in time_fields:
            ts = parse_time(value, key)
            if op in ("gte", "gt", "eq", None):
                q["lo"], q["lo_inclusive"] = ts, op != "gt"
            if op in ("lte", "lt", "eq", None):
                q["hi"], q["hi_inclusive"] = ts, op != "lt"
        else:
            supported = ", ".join(f"find[{f}]" for f in (*time_fields, "type"))
            raise DocumentError(key, f"not supported here (supported: {supported})")
    return Query(**q)


def devicestatus_time(doc: dict, index: int, now: datetime) -> datetime:
    """A devicestatus's ``created_at`` (or ``date`` / ``mills``); now when it has none."""
    if not any(doc.get(k) not in (None, "") for k in ("created_at", "date", "mills")):
        return now
    return document_time(doc, f"devicestatus[{index}]", ("created_at", "date", "mills"), now)
