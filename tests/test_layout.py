"""Every folder of tests is a package, so two test modules may share a file name.

Without ``__init__.py`` pytest imports ``tests/e2e/test_delivery.py`` and
``tests/algorithms/test_delivery.py`` both as ``test_delivery``, and collection stops with
"import file mismatch" on a fresh clone (CI, 2026-11-30).
"""

from __future__ import annotations

from pathlib import Path

TESTS = Path(__file__).resolve().parent


def test_every_test_folder_is_a_package() -> None:
    folders = {p.parent for p in TESTS.rglob("test_*.py") if "node_modules" not in p.parts}
    missing = sorted(
        str(f.relative_to(TESTS.parent)) for f in folders if not (f / "__init__.py").exists()
    )
    assert missing == [], f"add an __init__.py to: {', '.join(missing)}"
