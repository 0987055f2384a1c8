"""What strict parsing costs on the hot path: a 10,000-reading upload body parsed by
``api.schemas.loads_strict`` (duplicate keys refused) beside plain ``json.loads`` (the
yardstick, measured in the same run) and beside the body's pydantic validation.

    .venv/bin/python -m bench.strict_json [--readings 10000] [--repeat 30]
"""

from __future__ import annotations

import argparse
import json

from api.routes.readings import ReadingsUpload
from api.schemas import loads_strict
from bench.algorithms import median_ms


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readings", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=30)
    args = parser.parse_args()
    readings = [
        {"ts": "2026-11-24T07:15:00+01:00", "value": 112.0 + i % 7} for i in range(args.readings)
    ]
    body = json.dumps({"readings": readings}).encode()
    parsed = json.loads(body)
    plain = median_ms(lambda: json.loads(body), args.repeat)
    strict = median_ms(lambda: loads_strict(body), args.repeat)
    validate = median_ms(lambda: ReadingsUpload.model_validate(parsed), args.repeat)
    print(f"{args.readings} readings, {len(body)} bytes, median of {args.repeat}:")
    print(f"  json.loads (yardstick)   {plain:7.2f} ms")
    print(f"  loads_strict             {strict:7.2f} ms  (+{strict - plain:.2f} ms)")
    print(f"  pydantic validation      {validate:7.2f} ms")


if __name__ == "__main__":
    main()
