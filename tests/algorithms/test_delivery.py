"""The delivery rules, one case per branch: who gets an alert event, outside and on the
live stream. Expected values follow from the rules' text (docstrings of algorithms.delivery)."""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import pytest

from algorithms.delivery import RetrySchedule, in_quiet, muted_for_self, stream_wants, wants

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


# -- the retry schedule ------------------------------------------------------------------------


def test_the_default_schedule_doubles_from_half_a_second_to_two_minutes_within_an_hour() -> None:
    s = RetrySchedule()
    assert [s.interval_s(n) for n in (1, 2, 3, 8, 9, 50)] == [0.5, 1, 2, 64, 120, 120]
    times = s.attempts()
    assert times[:9] == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5, 63.5, 127.5]
    assert all(b - a == 120 for a, b in itertools.pairwise(times[8:]))
    assert times[-1] <= 3600 < times[-1] + 120 and len(times) == 37


def test_a_receiver_down_for_ten_minutes_gets_the_alert_within_two_minutes_of_coming_back() -> None:
    s = RetrySchedule()
    # attempts at ..., 487.5, 607.5 s: the first after the outage comes 7.5 s after it ends
    assert s.reached_after(600) == 7.5
    # whatever the outage up to 58 minutes, at most one max interval after the receiver is back
    for outage_s in range(0, 3480, 7):
        wait = s.reached_after(outage_s)
        assert wait is not None and 0 <= wait <= s.max_s, outage_s
    # each attempt taking the whole HTTP timeout (10 s): attempts start max + 10 s apart
    slow = s.reached_after(600, send_s=10.0)
    assert slow is not None and 0 <= slow <= s.max_s + 10
    assert s.reached_after(3600) is None  # down for the whole hour: given up


def test_the_receivers_retry_after_is_kept_within_zero_and_the_longest_wait() -> None:
    s = RetrySchedule(base_s=1, factor=3, max_s=30, horizon_s=100)
    assert s.next_attempt_s(1, 0, 10) == 11
    assert s.next_attempt_s(3, 0, 10) == 19
    assert s.next_attempt_s(1, 0, 10, hint_s=5) == 15
    assert s.next_attempt_s(1, 0, 10, hint_s=-5) == 10
    assert s.next_attempt_s(1, 0, 10, hint_s=3600) == 40
    assert s.next_attempt_s(1, 0, 80, hint_s=25) is None  # past the horizon
    assert s.next_attempt_s(1, 0, 99) == 100  # at the horizon itself: still made


def test_a_constant_or_huge_factor_never_overflows() -> None:
    assert RetrySchedule(base_s=2, factor=1, max_s=10, horizon_s=7).attempts() == [0, 2, 4, 6]
    huge = RetrySchedule(base_s=1, factor=1e300, max_s=5, horizon_s=60)
    assert [huge.interval_s(n) for n in (1, 2, 5000)] == [1, 5, 5]


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"base_s": 0}, "delivery_retry_base_s"),
        ({"base_s": float("nan")}, "delivery_retry_base_s"),
        ({"factor": 0.5}, "delivery_retry_factor"),
        ({"factor": float("inf")}, "delivery_retry_factor"),
        ({"base_s": 10, "max_s": 5}, "delivery_retry_max_s"),
        ({"max_s": float("inf")}, "delivery_retry_max_s"),
        ({"base_s": 10, "horizon_s": 5}, "delivery_retry_horizon_s"),
        ({"horizon_s": float("inf")}, "delivery_retry_horizon_s"),
    ],
)
def test_an_inconsistent_schedule_is_refused_naming_the_setting(fields: dict, named: str) -> None:
    with pytest.raises(ValueError, match=named):
        RetrySchedule(**fields)
