"""The delivery rules, one case per branch: who gets an alert event, outside and on the
live stream. Expected values follow from the rules' text (docstrings of algorithms.delivery)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from algorithms.delivery import in_quiet, muted_for_self, stream_wants, wants

NOW = 1_764_000_000.0  # a fixed instant; quiet periods below cover the whole day or none
ALWAYS = [{"start_min": 0, "end_min": 1440, "weekdays": list(range(7))}]


@dataclass(frozen=True)
class Event:
    id: str = "a1"
    rule: str = "high"
    urgent: bool = False


URGENT = Event(rule="urgent_low", urgent=True)


def person(**over: object) -> dict:
    base: dict = {
        "rules": None,
        "channels": ["stream", "push"],
        "quiet": [],
        "timezone": "UTC",
        "escalation_only": False,
    }
    return base | over


@pytest.mark.parametrize(
    ("quiet", "expected"),
    [([], False), (ALWAYS, True), ([{"start_min": 0, "end_min": 1440, "weekdays": []}], False)],
)
def test_in_quiet(quiet: list, expected: bool) -> None:
    assert in_quiet(quiet, "UTC", NOW) is expected


@pytest.mark.parametrize(
    ("who", "event", "notice", "expected"),
    [
        (person(), "escalated", Event(), True),  # escalation reaches everyone it is sent to
        (person(), "cleared", Event(), False),  # only firings and repeats go out
        (person(escalation_only=True), "fired", Event(), False),
        (person(rules=["low"]), "fired", Event(), False),  # a rule they did not choose
        (person(rules=["low"]), "fired", URGENT, True),  # ...unless urgent
        (person(quiet=ALWAYS), "fired", Event(), False),  # quiet hours hold warnings back
        (person(quiet=ALWAYS), "repeated", URGENT, True),  # ...never urgent alerts
        (person(rules=["high"]), "fired", Event(), True),
    ],
)
def test_wants(who: dict, event: str, notice: Event, expected: bool) -> None:
    assert wants(who, notice, event, NOW) is expected


@pytest.mark.parametrize(
    ("mine", "event", "expected"),
    [
        ({"acknowledged_for_self": True}, "fired", False),  # a firing is never held back
        ({"acknowledged_for_self": True}, "escalated", True),
        ({"snoozed_for_self_until": NOW + 60}, "repeated", True),
        ({"snoozed_for_self_until": NOW + 60}, "escalated", False),
        ({"snoozed_for_self_until": NOW - 60}, "repeated", False),
        ({}, "repeated", False),
    ],
)
def test_muted_for_self(mine: dict, event: str, expected: bool) -> None:
    assert muted_for_self(mine, event, NOW) is expected


@pytest.mark.parametrize(
    ("who", "event", "notice", "expected"),
    [
        (None, "fired", Event(), True),  # no preferences saved: everything
        (person(for_self={"a1": {"acknowledged_for_self": True}}), "repeated", Event(), False),
        (person(for_self={"a1": {"acknowledged_for_self": True}}), "fired", Event(), True),
        (person(channels=["push"]), "fired", Event(), False),
        (person(quiet=ALWAYS), "repeated", Event(), False),
        (person(), "cleared", Event(), True),
        (person(escalation_only=True), "cleared", Event(), False),
        (person(rules=["low"]), "cleared", Event(), False),
        (person(rules=["low"]), "cleared", URGENT, True),
    ],
)
def test_stream_wants(who: dict | None, event: str, notice: Event, expected: bool) -> None:
    assert stream_wants(who, notice, event, NOW) is expected
