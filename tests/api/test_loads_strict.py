"""``api.schemas.loads_strict`` reads what ``json.loads`` reads, the same way (bytes in any
of JSON's encodings, a BOM, errors at the same place), except duplicate keys and nesting
too deep, which it refuses by name."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from api.schemas import JsonRefused, loads_strict

TEXTS = [
    '{"seq": 1, "readings": [{"ts": "2026-12-01T08:00:00Z", "value": 112.0}]}',
    "[1, 2.5, -0.0, 1e400, null, true, false]",
    '"\\u00e9\\ud83d\\ude00 caf\\u00e9"',
    '  {"a": {"b": []}}  ',
    "NaN",
    "-Infinity",
    "",
    "{",
    '{"a" 1}',
    "[1,]",
    '{"a": 1} x',
    "\ufeff{}",
    '"\\ud800"',
]


def outcome(parse, text):
    try:
        return "ok", parse(text)
    except json.JSONDecodeError as exc:
        return "error", (exc.msg, exc.pos)


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("encoding", [None, "utf-8", "utf-16", "utf-16-le", "utf-32-be"])
def test_reads_as_json_loads(text: str, encoding: str | None) -> None:
    given_text = text if encoding is None else text.encode(encoding, "surrogatepass")
    got, want = outcome(loads_strict, given_text), outcome(json.loads, given_text)
    assert repr(got) == repr(want)  # repr: NaN equal to NaN, -0.0 told from 0.0


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_any_value_round_trips(value: object) -> None:
    text = json.dumps(value)
    assert loads_strict(text) == json.loads(text) == value
    assert loads_strict(text.encode()) == value


def test_duplicate_keys_and_deep_nesting_are_refused_by_name() -> None:
    with pytest.raises(JsonRefused) as dup:
        loads_strict('{"readings": [{"value": 1, "ts": "x", "value": 2}]}')
    assert (dup.value.loc, dup.value.kind) == (["value"], "json_invalid")
    assert "duplicate key 'value'" in dup.value.msg
    with pytest.raises(JsonRefused, match="nested too deeply"):
        loads_strict("[" * 100_000 + "]" * 100_000)
    assert loads_strict('{"a": 1, "b": {"a": 2}}') == {"a": 1, "b": {"a": 2}}  # per object
