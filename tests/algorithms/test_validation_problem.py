"""Where a validation problem points, below the list's own location."""

from __future__ import annotations

from algorithms.validation import Problem


def test_a_problem_locates_itself_by_index_and_field() -> None:
    assert Problem(3, "ts", "m").loc() == [3, "ts"]
    assert Problem(None, "readings", "m").loc() == ["readings"]
    assert Problem(2, None, "m").loc() == [2]
    assert Problem(None, None, "m").loc() == []
    assert Problem(1, "quiet", "m", (2, "end")).loc() == [1, "quiet", 2, "end"]
