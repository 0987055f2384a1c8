"""Nightscout documents <-> Vigil records (pure): treatment mapping, entry validation,
query parsing and body bounds, each with the exact field an error names."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from api.routes.nightscout import documents as ns
from api.routes.nightscout.manage import secret_hash

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
T = "2026-11-30T11:00:00.000Z"


@pytest.mark.parametrize(
    ("doc", "kind", "details"),
    [
        ({"eventType": "Meal Bolus", "carbs": 45, "insulin": 4}, "meal", {"carbs_g": 45.0}),
        ({"eventType": "Carb Correction", "carbs": "12"}, "meal", {"carbs_g": 12.0}),
        (
            {"eventType": "Correction Bolus", "insulin": 1.5},
            "insulin",
            {"units": 1.5, "insulin_type": "rapid"},
        ),
        (
            {"eventType": "Exercise", "duration": 30},
            "exercise",
            {"type": "exercise", "duration_min": 30.0, "intensity": "moderate"},
        ),
        ({"eventType": "Note", "notes": "pizza"}, "note", {}),
        (
            {"eventType": "Temp Basal", "duration": 30, "absolute": 0.4},
            "custom",
            {"name": "Temp Basal", "value": 30.0, "unit": "min"},
        ),
        ({"eventType": "Site Change"}, "custom", {"name": "Site Change"}),
        ({"eventType": "Note"}, "custom", {"name": "Note"}),  # a note without text
    ],
)
def test_treatments_become_events(doc: dict, kind: str, details: dict) -> None:
    fields = ns.treatment_fields({**doc, "created_at": T}, 0, NOW)
    assert (fields["kind"], fields["details"]) == (kind, details)
    assert fields["ts"] == datetime(2026, 11, 30, 11, 0, tzinfo=UTC)


def test_exercise_ends_after_its_duration() -> None:
    fields = ns.treatment_fields(
        {"eventType": "Exercise", "duration": 45, "date": 1764500000000}, 0, NOW
    )
    assert fields["end_ts"] - fields["ts"] == timedelta(minutes=45)


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"carbs": -1, "created_at": T}, "treatments[2].carbs"),
        ({"carbs": "lots", "created_at": T}, "treatments[2].carbs"),
        ({"insulin": 150, "created_at": T}, "treatments[2].insulin"),
        ({"insulin": True, "created_at": T}, "treatments[2].insulin"),
        ({"eventType": "Note"}, "treatments[2].created_at"),
        ({"created_at": "2026-13-01"}, "treatments[2].created_at"),
        ({"created_at": "2026-12-05T00:00:00Z"}, "treatments[2].created_at"),
        ({"notes": ["a"], "created_at": T}, "treatments[2].notes"),
        ({"eventType": {"x": 1}, "created_at": T}, "treatments[2].eventType"),
    ],
)
def test_bad_treatments_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ns.DocumentError) as caught:
        ns.treatment_fields(doc, 2, NOW)
    assert caught.value.field == field


def test_a_treatment_is_identified_by_the_clients_id_or_type_and_time() -> None:
    fields = ns.treatment_fields({"created_at": T}, 0, NOW)
    assert ns.treatment_key({"uuid": "abc"}, fields) == "ns:uuid:abc"
    assert ns.treatment_key({"pumpId": 4711}, fields) == "ns:pumpId:4711"
    assert ns.treatment_key({"eventType": "Site Change"}, fields) == (
        f"ns:Site Change:{ns.ms(fields['ts'])}"
    )


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"type": "sgv", "sgv": 700, "date": 1764500000000}, "entries[1].sgv"),
        ({"type": "sgv", "date": 1764500000000}, "entries[1].sgv"),
        ({"type": "mbg", "mbg": 10, "date": 1764500000000}, "entries[1].mbg"),
        ({"type": "sgv", "sgv": 100}, "entries[1].date"),
        ({"type": "sgv", "sgv": 100, "date": -5}, "entries[1].date"),
        ({"type": "rawbg", "date": 1764500000000}, "entries[1].type"),
        ({"type": "cal", "slope": "x", "date": 1764500000000}, "entries[1].slope"),
    ],
)
def test_bad_entries_name_the_field(doc: dict, field: str) -> None:
    with pytest.raises(ns.DocumentError) as caught:
        ns.entry_in(doc, 1, NOW)
    assert caught.value.field == field


def test_entries_read_date_or_date_string() -> None:
    by_ms = ns.entry_in({"sgv": 120, "date": 1764500000000}, 0, NOW)
    by_iso = ns.entry_in({"sgv": 120, "dateString": "2025-11-30T10:53:20Z"}, 0, NOW)
    assert by_ms.ts == by_iso.ts and by_ms.type == "sgv" and by_ms.value == 120


def test_an_entry_id_leads_back_to_its_time() -> None:
    ts = datetime(2026, 11, 30, 10, 5, 7, 123000, tzinfo=UTC)
    entry_id = ns.entry_id(ts, "G7-123")
    assert len(entry_id) == 24 and ns.id_time(entry_id) == ts
    assert ns.entry_id(ts, "other") != entry_id and ns.id_time("not-an-id") is None


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ([], ns.Query()),
        ([("count", "288")], ns.Query(count=288)),
        ([("count", "999999")], ns.Query(count=ns.MAX_COUNT)),
        (
            [("find[date][$gt]", "1764500000000")],
            ns.Query(lo=ns.from_ms(1764500000000), lo_inclusive=False),
        ),
        (
            [("find[dateString][$lte]", "2026-11-30T10:00:00Z")],
            ns.Query(hi=datetime(2026, 11, 30, 10, tzinfo=UTC)),
        ),
        ([("find[type]", "mbg"), ("token", "x")], ns.Query(types=("mbg",))),
    ],
)
def test_queries(params: list[tuple[str, str]], expected: ns.Query) -> None:
    assert ns.parse_query(params, ("date", "dateString")) == expected


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ([("count", "-1")], "count"),
        ([("count", "ten")], "count"),
        ([("find[sgv][$gte]", "100")], "find[sgv][$gte]"),
        ([("find[type]", "rawbg")], "find[type]"),
        ([("find[date][$gte]", "soon")], "find[date][$gte]"),
    ],
)
def test_bad_queries_name_the_parameter(params: list[tuple[str, str]], field: str) -> None:
    with pytest.raises(ns.DocumentError) as caught:
        ns.parse_query(params, ("date", "dateString"))
    assert caught.value.field == field


def nested(levels: int) -> dict:
    doc: dict = {}
    for _ in range(levels):
        doc = {"x": doc}
    return doc


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"{nope", "not valid JSON"),
        (b"[1]", "must be a JSON object"),
        (json.dumps([{}] * (ns.MAX_DOCUMENTS + 1)).encode(), "at most 1000"),
        (json.dumps(nested(ns.MAX_DEPTH + 1)).encode(), "nested deeper"),
        (json.dumps({"a": "x" * ns.MAX_DOCUMENT_BYTES}).encode(), "larger than"),
        (b'{"notes": "a\\u0000b"}', "NUL"),
        (b'{"sgv": NaN}', "not valid JSON"),
    ],
)
def test_bodies_are_bounded(raw: bytes, message: str) -> None:
    with pytest.raises(ns.DocumentError) as caught:
        ns.parse_body(raw, "treatments")
    assert message in str(caught.value)


def test_one_object_or_an_array() -> None:
    assert ns.parse_body(b'{"a": 1}', "x") == [{"a": 1}]
    assert ns.parse_body(json.dumps(nested(ns.MAX_DEPTH - 1)).encode(), "x")  # 8 levels


def test_the_secret_is_recognised_as_itself_or_its_sha1() -> None:
    import hashlib

    secret = "my family secret"
    digest = hashlib.sha1(secret.encode()).hexdigest()
    assert secret_hash(secret) == secret_hash(digest) == secret_hash(digest.upper())
    assert secret_hash(secret) != secret_hash(secret + "!")
    assert secret_hash(" " + secret) != secret_hash(secret)  # the secret is taken as it is
