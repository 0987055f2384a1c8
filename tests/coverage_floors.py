"""Combine the coverage data of every process of a test run and enforce the floors.

`make test` runs pytest under coverage with ``patch = subprocess`` (pyproject.toml), so the
Ray workers and Serve replicas it starts write data files of their own; this combines them,
prints the table and fails (exit 1) when a part of the code is below its floor. A floor is
set by path, so one for code that has not landed yet applies as soon as it does.

    python -m tests.coverage_floors            # combine, report, check
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import coverage
from coverage.exceptions import NoDataError


@dataclass(frozen=True, slots=True)
class Floor:
    pattern: str  # coverage --include pattern, relative to the repository root
    percent: float  # lines and branches together, as coverage reports them
    why: str


FLOORS = (
    Floor("algorithms/*", 100.0, "pure functions: every line and branch is tested directly"),
    Floor("sensor_ingest/ble/cgm.py", 100.0, "a BLE codec: pure functions, every field tested"),
    Floor("sensor_ingest/ble/hts.py", 100.0, "a BLE codec: pure functions, every field tested"),
    Floor("sensor_ingest/ble/racp.py", 100.0, "a BLE codec: pure functions, every field tested"),
    Floor(
        "sensor_ingest/ble/ieee11073.py", 100.0, "a BLE codec: pure functions, every field tested"
    ),
    Floor("sensor_ingest/ble/crc.py", 100.0, "a BLE codec: pure functions, every field tested"),
    Floor("sensor_ingest/ble/reader.py", 100.0, "a BLE codec: pure functions, every field tested"),
    Floor(
        "sensor_ingest/ble/datetime_codec.py",
        100.0,
        "a BLE codec: pure functions, every field tested",
    ),
    Floor("sensor_ingest/ble/errors.py", 100.0, "a BLE codec: pure functions, every field tested"),
    # The cross-process total: 92.75 % measured on 2026-11-30 (make test's two pytest runs
    # from a fresh clone; 72 % in the pytest process alone before cross-process coverage).
    # A few paths depend on timing (retries, races a drill may or may not hit), so the floor
    # sits just under the measured figure; raise it as tests are added, never lower it.
    Floor("*", 92.0, "everything measured"),
)


def check(cov: coverage.Coverage, floors: tuple[Floor, ...] = FLOORS) -> list[str]:
    """The floors not met, as messages; a floor whose files are absent is skipped."""
    failures = []
    for floor in floors:
        try:
            percent = cov.report(include=[floor.pattern], file=_Null(), show_missing=False)
        except NoDataError:
            continue
        if percent < floor.percent:
            failures.append(f"{floor.pattern}: {percent:.2f} % < {floor.percent} % ({floor.why})")
    return failures


class _Null:
    def write(self, _: str) -> int:
        return 0

    def flush(self) -> None:
        pass


def main() -> int:
    cov = coverage.Coverage(config_file=str(Path("pyproject.toml").resolve()))
    cov.combine(keep=False)
    cov.save()
    cov.load()
    cov.report()
    failures = check(cov)
    for failure in failures:
        print(f"coverage floor not met: {failure}", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
