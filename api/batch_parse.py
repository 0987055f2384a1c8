"""A readings batch in its common form, read straight into arrays.

Every batch a device sends (``POST …/readings``, a message on ``…/readings/stream``) is
read by :func:`api.schemas.loads_strict` and validated by pydantic (``ReadingsUpload``),
then copied into the two arrays the shard takes. For the batch nearly every device sends,
a list of ``{"ts": "<ISO 8601 with offset>", "value": <number>}``, :func:`parse_batch`
reads that form into the arrays directly, in C where it can (orjson,
``datetime.fromisoformat``): half the full path's time for a stream's one-reading batch,
about two thirds for a 100-reading upload (``python -m bench.strict_json``).

It only ever **accepts less**: whatever it returns, the full path would have accepted with
the same ``seq``, timestamps (to the microsecond) and values. Anything else — another key,
a ``body_site``, an escape sequence, a timestamp of another ISO form, a number that is not
finite, text that is not UTF-8, a key given twice, an error of any kind — gives ``None``,
and the caller takes the full path, which answers exactly as before (the same errors, the
same ``loc``). ``tests/api/test_batch_parse.py`` holds the two paths to that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import numpy as np
import orjson

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)
# The one timestamp form read here (what Vigil's own clients and the examples send);
# ``datetime.fromisoformat`` reads more forms than pydantic does, so the form is checked
# first. Up to six fraction digits: the value is then exact to the microsecond either way.
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d{1,6})?(?:Z|[+-]\d\d:\d\d)")


@dataclass(frozen=True, slots=True)
class Batch:
    """A batch as its shard takes it."""

    ts_us: np.ndarray  # int64, microseconds since the epoch
    values: np.ndarray  # float64
    body_site: str | None = None  # where a temperature sensor sits from this batch on

    def __len__(self) -> int:
        return len(self.ts_us)


def parse_batch(text: str | bytes, *, streamed: bool) -> tuple[int | None, Batch] | None:
    """``seq`` and the batch, if it is a plainly valid batch of the common form; None
    otherwise (take the full path). ``streamed``: a stream message, which may also carry
    ``seq``."""
    if isinstance(text, str):
        backslash, colon = "\\", ":"
    else:
        backslash, colon = b"\\", b":"  # type: ignore[assignment]
    if backslash in text:  # an escape: parsed text would differ from the raw text below
        return None
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    if type(data) is not dict or type(readings := data.get("readings")) is not list:
        return None
    seq = data.get("seq")
    if len(data) != 1 + ("seq" in data) or (
        "seq" in data and (not streamed or (seq is not None and type(seq) is not int))
    ):
        return None
    # A key given twice leaves one entry in the parsed object but its colon in the text:
    # every colon of an accepted batch is a key's or a timestamp's (no escapes, no other
    # strings), so counting them tells.
    colons = len(data) + 2 * len(readings)
    stamps_us: list[int] = []
    numbers: list[int | float] = []
    try:
        for reading in readings:
            if type(reading) is not dict or len(reading) != 2:
                return None
            ts, value = reading.get("ts"), reading.get("value")
            if type(ts) is not str or not isinstance(value, int | float) or type(value) is bool:
                return None
            if _TIMESTAMP.fullmatch(ts) is None:
                return None
            stamps_us.append((datetime.fromisoformat(ts) - EPOCH) // _US)
            numbers.append(value)  # finite: orjson refuses NaN, Infinity and 1e400
            colons += ts.count(":")
        if text.count(colon) != colons:  # type: ignore[arg-type]
            return None
        return seq, Batch(np.array(stamps_us, dtype=np.int64), np.array(numbers, dtype=np.float64))
    except (ValueError, OverflowError):  # no such date; beyond the arrays' range
        return None


def micros(ts: datetime) -> int:
    """An aware datetime in microseconds since the epoch."""
    return (ts - EPOCH) // _US
