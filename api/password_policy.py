"""Password rules for signup and reset: long enough, and not one of the commonest passwords.

The list (``api/data/common-passwords.txt.gz``, about 20,000 entries, lower-cased) is the
one Django ships (from Royce Williams' compilation of leaked passwords); it is checked
case-insensitively, so "Password123" is refused like "password123".
"""

from __future__ import annotations

import gzip
from functools import cache
from pathlib import Path

MIN_LENGTH = 10
MAX_LENGTH = 256
_LIST = Path(__file__).with_name("data") / "common-passwords.txt.gz"


@cache
def common_passwords() -> frozenset[str]:
    with gzip.open(_LIST, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def check_password(password: str) -> str:
    """The password, or ValueError naming what is wrong (pydantic turns it into a 422)."""
    if password.strip().lower() in common_passwords():
        raise ValueError("this password is among the most common ones; choose another")
    if len(set(password)) < 4:
        raise ValueError("this password repeats too few characters; choose another")
    return password
