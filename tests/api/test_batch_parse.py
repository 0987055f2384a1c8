"""``api.batch_parse.parse_batch`` accepts only what the full path accepts, with the same
``seq``, timestamps and values: over generated batches, well-formed and broken, whatever it
returns is compared with ``loads_strict`` + pydantic + ``batch_of``."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from api.batch_parse import parse_batch
from api.routes.readings import ReadingsUpload, batch_of
from api.routes.readings_stream import StreamedBatch
from api.schemas import loads_strict


def full_path(text: str | bytes, streamed: bool) -> tuple[int | None, object] | None:
    """What the full path reads, or None where it refuses."""
    model = StreamedBatch if streamed else ReadingsUpload
    try:
        body = model.model_validate(loads_strict(text))
    except (ValueError, ValidationError):
        return None
    return getattr(body, "seq", None), batch_of(body)


def check(text: str | bytes, streamed: bool) -> bool:
    """Whether the fast path took ``text``; fails if it read anything but what the full
    path reads."""
    fast = parse_batch(text, streamed=streamed)
    if fast is None:
        return False
    full = full_path(text, streamed)
    assert full is not None, f"fast path accepted what the full path refuses: {text!r}"
    assert fast[0] == full[0]
    batch, expected = fast[1], full[1]
    assert batch.body_site is None and expected.body_site is None  # type: ignore[attr-defined]
    assert batch.ts_us.dtype == np.int64 and batch.values.dtype == np.float64
    np.testing.assert_array_equal(batch.ts_us, expected.ts_us)  # type: ignore[attr-defined]
    # Bit for bit: -0.0 stays -0.0.
    assert batch.values.tobytes() == expected.values.tobytes()  # type: ignore[attr-defined]
    return True


offsets = st.integers(-23 * 60 - 59, 23 * 60 + 59).map(lambda m: timedelta(minutes=m))
moments = st.datetimes(
    min_value=datetime(1971, 1, 1), max_value=datetime(9998, 12, 31), timezones=st.just(UTC)
)


@st.composite
def stamps(draw: st.DrawFn, common: bool) -> str:
    """ISO 8601 timestamps of the common form (and, unless ``common``, of others)."""
    moment = draw(moments).astimezone(timezone(draw(offsets)))
    spec = draw(st.sampled_from(["seconds", "milliseconds", "microseconds"]))
    text = moment.isoformat(timespec=spec)
    if moment.utcoffset() == timedelta(0) and draw(st.booleans()):
        text = text[:-6] + "Z"
    if common:
        return text
    return draw(
        st.sampled_from(
            [
                *[text] * 6,
                text.replace("T", " "),
                text.lower(),
                text[:10],
                text.replace("-", "", 2),
                text + "0",
                text[:19] + ".1234567" + text[19:],
            ]
        )
    )


numbers = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False), st.integers(-(2**63), 2**64 - 1)
)
values = st.one_of(
    numbers, numbers, numbers, numbers, st.booleans(), st.none(), st.text(max_size=3)
)


@st.composite
def batches(draw: st.DrawFn) -> tuple[str, bool]:
    streamed, common = draw(st.booleans()), draw(st.booleans())
    reading = {"ts": stamps(common), "value": numbers if common else values}
    readings = draw(st.lists(st.fixed_dictionaries(reading), max_size=5))
    body: dict = {"readings": readings}
    if draw(st.booleans()):
        body["seq"] = draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.none(), st.booleans()))
    text = json.dumps(body, separators=draw(st.sampled_from([(",", ":"), (", ", ": ")])))
    edit = draw(st.sampled_from(["none"] * 4 + ["dup", "extra", "escape", "site", "bytes"]))
    if edit == "dup" and readings:
        text = text.replace('"value"', '"value": 1, "value"', 1)
    elif edit == "dup":
        text = text.replace('"readings"', '"readings": [], "readings"', 1)
    elif edit == "extra":
        text = text[:-1] + ', "note": "x"}'
    elif edit == "escape":
        text = text.replace('"ts"', '"t\\u0073"', 1).replace(":", "\\u003a", 1)
    elif edit == "site":
        text = text[:-1] + ', "body_site": "axilla"}'
    return text, streamed


@settings(max_examples=600, deadline=None)
@given(batches())
@example(('{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": 112}]}', False))
@example(('{"seq": 3, "readings": [{"ts": "2026-11-24T07:15:00Z", "value": -0.0}]}', True))
@example(('{"seq": true, "readings": []}', True))
@example(('{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": 1e400}]}', False))
@example(('{"readings": [{"ts": "2026-02-30T07:15:00+01:00", "value": 1}]}', False))
@example(('{"readings": [{"ts": "2026-11-24T07:15:00+24:00", "value": 1}]}', False))
@example(('{"readings": [{"ts": "0001-01-01T00:00:00+01:00", "value": 1}]}', False))
def test_the_fast_path_reads_only_what_the_full_path_reads(case: tuple[str, bool]) -> None:
    text, streamed = case
    check(text, streamed)
    check(text.encode(), streamed)


@pytest.mark.parametrize(
    ("text", "streamed"),
    [
        ('{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": 112.0}]}', False),
        ('{"readings":[{"value":112,"ts":"2026-11-24T07:15:00.5-05:30"}],"seq":null}', True),
        ('{"seq": 17, "readings": [{"ts": "2026-11-24T06:15:00.123456Z", "value": 40}]}', True),
        ('{"readings": []}', False),
        ('\n{ "readings" : [ { "ts" : "2026-11-24T07:15:00+01:00" , "value" : 1e2 } ] }\n', False),
    ],
)
def test_the_common_forms_take_the_fast_path(text: str, streamed: bool) -> None:
    assert check(text, streamed)
    assert check(text.encode(), streamed)


@pytest.mark.parametrize(
    ("text", "streamed", "why"),
    [
        ('{"seq": 1, "readings": []}', False, "seq on an HTTP upload: the model's 422"),
        (
            '{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "ts": "x", "value": 1}]}',
            False,
            "a key twice",
        ),
        ('{"readings": [], "readings": []}', False, "a key twice, at the top"),
        ('{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": true}]}', False, "a bool"),
        ('{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": "1"}]}', False, "a string"),
        ('{"readings": [{"ts": 1764000000, "value": 1}]}', False, "a Unix time"),
        ('{"readings": [{"ts": "2026-11-24T07:15:00", "value": 1}]}', False, "no offset"),
        ('{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": NaN}]}', False, "NaN"),
        ('{"readings": [{"ts": "2026-11-24T07:15:00\\u002b01:00", "value": 1}]}', False, "escape"),
        (
            '{"readings": [{"ts": "2026-11-24T07:15:00Z", "value": 1}], "body_site": "axilla"}',
            False,
            "a body site",
        ),
        (
            '{"readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": 1, "x": 2}]}',
            False,
            "a key more",
        ),
        ('{"readings": {}}', False, "not a list"),
        ("[]", False, "not an object"),
        ("{", False, "not JSON"),
    ],
)
def test_anything_else_takes_the_full_path(text: str, streamed: bool, why: str) -> None:
    assert parse_batch(text, streamed=streamed) is None, why
    assert parse_batch(text.encode(), streamed=streamed) is None, why


def test_a_timestamp_is_read_to_the_microsecond_in_utc() -> None:
    text = '{"readings": [{"ts": "2026-11-24T07:15:00.000001+01:00", "value": 5.5}]}'
    parsed = parse_batch(text, streamed=False)
    assert parsed is not None
    expected = datetime(2026, 11, 24, 6, 15, 0, 1, tzinfo=UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    assert parsed[1].ts_us.tolist() == [expected // timedelta(microseconds=1)]
    assert parsed[1].values.tolist() == [5.5] and not math.isnan(parsed[1].values[0])
