"""What strict parsing costs on the hot path: an upload body (10,000 readings by default; a
stream's one-reading batch with ``--readings 1``) parsed by ``api.schemas.loads_strict``
(duplicate keys refused) beside plain ``json.loads`` (the yardstick, measured in the same
run), the body's pydantic validation and copy into the shard's arrays (the full path), and
``api.batch_parse.parse_batch`` (the common form's path, straight into the arrays).

    .venv/bin/python -m bench.strict_json [--readings 10000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json

from api.batch_parse import parse_batch
from api.routes.readings import ReadingsUpload, batch_of
from api.schemas import loads_strict
from bench.algorithms import median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    readings = [
        {"ts": f"2026-11-24T07:{i // 60 % 60:02d}:{i % 60:02d}+01:00", "value": 112.0 + i % 7}
        for i in range(args.readings)
    ]
    body = json.dumps({"readings": readings}).encode()
    parsed = json.loads(body)
    plain = median_ms(lambda: json.loads(body), args.repeat)
    strict = median_ms(lambda: loads_strict(body), args.repeat)
    validate = median_ms(lambda: ReadingsUpload.model_validate(parsed), args.repeat)
    full = median_ms(
        lambda: batch_of(ReadingsUpload.model_validate(loads_strict(body))), args.repeat
    )
    fast = median_ms(lambda: parse_batch(body, streamed=False), args.repeat)
    assert parse_batch(body, streamed=False) is not None
    print(f"{args.readings} readings, {len(body)} bytes, median of {args.repeat}:")
    print(f"  json.loads (yardstick)   {plain:8.3f} ms")
    print(f"  loads_strict             {strict:8.3f} ms  (+{strict - plain:.3f} ms)")
    print(f"  pydantic validation      {validate:8.3f} ms")
    print(f"  full path to the arrays  {full:8.3f} ms")
    print(f"  parse_batch              {fast:8.3f} ms  ({fast / full:.2f} of the full path)")


if __name__ == "__main__":
    main()
