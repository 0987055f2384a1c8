"""``storage.json_text``: the same JSON values the ``json`` module wrote, compact."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from storage import json_text

finite = st.floats(allow_nan=False, allow_infinity=False)
scalars = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | finite | st.text()
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(values)
def test_what_is_written_parses_to_what_json_wrote(value: object) -> None:
    text = json_text.dumps_text(value)
    assert json.loads(text) == json.loads(json.dumps(value))
    assert json_text.dumps(value) == text.encode()
    assert json_text.loads(text) == json.loads(text)


exact = st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text()


@given(st.recursive(exact, lambda inner: st.dictionaries(st.text(), inner, max_size=4)))
def test_compact_with_keys_in_order_and_text_as_utf8(value: object) -> None:
    # floats aside (a number may be spelled differently), the very text json writes compact
    assert json_text.dumps_text(value) == json.dumps(
        value, separators=(",", ":"), ensure_ascii=False
    )


def test_a_notify_head_is_byte_for_byte_the_compact_form() -> None:
    # storage.live reads a payload's profile from its head without decoding it
    wire = {"p": "6c1f0a3e-0000-4000-8000-000000000000", "d": "x", "r": {"v": 1.5}}
    assert json_text.dumps_text(wire) == json.dumps(wire, separators=(",", ":"))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_a_float_that_is_not_finite_is_written_null(bad: float) -> None:
    assert json_text.dumps_text({"v": bad, "w": [bad, np.float64(bad)]}) == (
        '{"v":null,"w":[null,null]}'
    )


def test_numpy_scalars_and_integer_keys_as_json_writes_them() -> None:
    value = {"f": np.float64(2.5), "i": np.int64(7), "b": np.bool_(True), 3: "three"}
    assert json.loads(json_text.dumps_text(value)) == json.loads(
        json.dumps({"f": 2.5, "i": 7, "b": True, 3: "three"})
    )


def test_what_is_not_json_is_refused_on_reading() -> None:
    for text in ("NaN", '{"a": 1', "{'a': 1}", ""):
        with pytest.raises(ValueError):
            json_text.loads(text)
