"""JSON for the per-reading paths, by orjson: the NOTIFY payloads, the alert state the
shards write, the messages on the two WebSockets.

The standard ``json`` module spent about a seventh of a shard's CPU on these (25 µs for one
device's alert state, 13 µs for its NOTIFY payload; orjson: 1.2 and 4.6). What is written
is the same JSON value, compact (``","`` and ``":"``, as the NOTIFY payloads always were),
keys in insertion order, text as UTF-8 rather than ``\\u`` escapes. Two differences, both
towards valid JSON: a float that is not finite is written ``null`` where ``json`` writes
``NaN`` (not JSON: PostgreSQL's ``jsonb`` refuses it and a browser's ``JSON.parse`` too),
and numbers may be spelled differently (``1e16`` for ``1e+16``) but parse to the same float.
numpy scalars and non-string keys are written as ``json`` writes them.
"""

from __future__ import annotations

from typing import Any

import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS

loads = orjson.loads  # bytes or str; a ``ValueError`` for anything that is not JSON


def dumps(obj: Any) -> bytes:
    """``obj`` as JSON, UTF-8 (for a psycopg ``Jsonb``, which takes bytes)."""
    return orjson.dumps(obj, option=_OPTIONS)


def dumps_text(obj: Any) -> str:
    """``obj`` as JSON text."""
    return orjson.dumps(obj, option=_OPTIONS).decode()
