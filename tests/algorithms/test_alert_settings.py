"""The alert-settings rules, one table row per rule (so one failure does not hide another)."""

from __future__ import annotations

import pytest

from algorithms.alert_settings import QuietInput, RuleInput, validate_rules, validate_settings
from algorithms.rules import RuleKind
from algorithms.sensors import SensorKind
from algorithms.validation import Problem

G, T = SensorKind.GLUCOSE, SensorKind.TEMPERATURE
K = RuleKind
NIGHT = QuietInput("22:00", "07:00")


@pytest.mark.parametrize(
    ("sensor", "items", "expected"),
    [
        pytest.param(G, [RuleInput(K.FEVER)], Problem(0, "kind", "fever is not a glucose rule"),
                     id="kind-of-another-sensor"),
        pytest.param(G, [RuleInput(K.HIGH), RuleInput(K.HIGH, 240)],
                     Problem(1, "kind", "high is listed twice"), id="kind-twice"),
        pytest.param(G, [RuleInput(K.URGENT_LOW, enabled=False)],
                     Problem(0, "enabled", "urgent low cannot be disabled"),
                     id="urgent-low-disabled"),
        pytest.param(G, [RuleInput(K.URGENT_LOW, 60)],
                     Problem(0, "threshold", "urgent low is fixed at 55 mg/dL"),
                     id="urgent-low-moved"),
        pytest.param(G, [RuleInput(K.SENSOR_PROBLEM, 1)],
                     Problem(0, "threshold", "sensor_problem has no threshold"),
                     id="threshold-where-none"),
        pytest.param(G, [RuleInput(K.HIGH, 700)],
                     Problem(0, "threshold", "high threshold 700 mg/dL is outside 20-600 mg/dL"),
                     id="threshold-outside-sensor-range"),
        pytest.param(T, [RuleInput(K.FEVER, 50)],
                     Problem(0, "threshold", "fever threshold 50 °C is outside 25-45 °C"),
                     id="temperature-threshold-outside-range"),
        pytest.param(G, [RuleInput(K.RISE, 20)],
                     Problem(0, "threshold",
                             "rise threshold 20 mg/dL/min is outside 0.5-10 mg/dL/min"),
                     id="rate-outside-range"),
        pytest.param(G, [RuleInput(K.SIGNAL_LOSS, 2)],
                     Problem(0, "threshold", "signal_loss threshold 2 min is outside 5-1440 min"),
                     id="signal-loss-outside-range"),
        pytest.param(G, [RuleInput(K.URGENT_LOW_SOON, quiet=(NIGHT,))],
                     Problem(0, "quiet",
                             "urgent_low_soon is urgent: it always alerts,"
                             " quiet hours cannot apply"),
                     id="quiet-on-urgent"),
        pytest.param(G, [RuleInput(K.HIGH, quiet=(QuietInput("22:00", "22:00"),))],
                     Problem(0, "quiet", "quiet period 0 (22:00-22:00) is empty", (0, "end")),
                     id="quiet-empty"),
        pytest.param(G, [RuleInput(K.HIGH, quiet=(QuietInput("24:00", "07:00"),))],
                     Problem(0, "quiet", "quiet period 0 (24:00-07:00) is empty", (0, "start")),
                     id="quiet-starts-at-midnight-end"),
        pytest.param(G, [RuleInput(K.HIGH, quiet=(NIGHT, QuietInput("06:00", "08:00")))],
                     Problem(0, "quiet", "quiet period 1 (06:00-08:00) overlaps an earlier one",
                             (1,)),
                     id="quiet-overlap"),
        pytest.param(G, [RuleInput(K.HIGH, quiet=(QuietInput("22:00", "07:00", (9,)),))],
                     Problem(0, "quiet", "quiet period 0 (22:00-07:00): weekdays are 0 (Monday)"
                             " to 6 (Sunday)", (0, "weekdays")),
                     id="quiet-weekday-unknown"),
        pytest.param(G, [RuleInput(K.HIGH, realert_min=0)],
                     Problem(0, None, "high: hysteresis, realert_s and duration_s must be >= 0"),
                     id="rule-refused-by-rule"),
    ],
)  # fmt: skip
def test_each_rule_of_a_list(sensor: SensorKind, items: list[RuleInput], expected: Problem) -> None:
    rules, problems = validate_rules(sensor, items)
    assert problems == [expected]
    assert len(rules) == len(items) - 1


@pytest.mark.parametrize(
    ("sensor", "items", "message"),
    [
        pytest.param(G, [RuleInput(K.LOW, 250)], "low must be below high (low 250, high 250)",
                     id="low-not-below-high"),
        pytest.param(G, [RuleInput(K.LOW, 50)],
                     "low must be at or above urgent low (55 mg/dL) (urgent_low 55, low 50)",
                     id="low-below-urgent-low"),
        pytest.param(T, [RuleInput(K.FEVER, 40)],
                     "fever must be below high fever (fever 40, high_fever 39.5)",
                     id="fever-not-below-high-fever"),
        pytest.param(T, [RuleInput(K.HYPOTHERMIA, 38)],
                     "hypothermia must be below fever (hypothermia 38, fever 38)",
                     id="hypothermia-not-below-fever"),
    ],
)  # fmt: skip
def test_each_order_rule(sensor: SensorKind, items: list[RuleInput], message: str) -> None:
    stored, problems = validate_settings({sensor: items})
    assert problems == {sensor: [Problem(None, None, message)]}
    assert len(stored[str(sensor)]) == len(items)  # each rule is fine on its own


def test_accepted_settings_are_stored_as_rules() -> None:
    given = {
        G: [
            RuleInput(K.HIGH, 240, quiet=(NIGHT, QuietInput("12:00", "13:00", (5, 6)))),
            RuleInput(K.LOW, 55, realert_min=30, duration_min=5),
            RuleInput(K.URGENT_LOW, 55, enabled=True),
        ],
        T: [RuleInput(K.FEVER, 38.5)],
    }
    stored, problems = validate_settings(given)
    assert problems == {}
    high, low, urgent = stored["glucose"]
    assert high["threshold"] == 240
    assert [(q["start_min"], q["end_min"]) for q in high["quiet"]] == [(1320, 420), (720, 780)]
    assert (low["realert_s"], low["duration_s"]) == (1800, 300)
    assert urgent["threshold"] == 55
    assert stored["temperature"][0]["threshold"] == 38.5


def test_every_problem_is_reported_not_just_the_first() -> None:
    items = [RuleInput(K.HIGH, 700), RuleInput(K.FEVER), RuleInput(K.LOW, 10)]
    rules, problems = validate_rules(G, items)
    assert [(p.index, p.field) for p in problems] == [
        (0, "threshold"),
        (1, "kind"),
        (2, "threshold"),
    ]
    assert rules == []


def test_hhmm_writes_minutes_after_midnight() -> None:
    from algorithms.alert_settings import hhmm

    assert (hhmm(0), hhmm(7 * 60 + 5), hhmm(1440)) == ("00:00", "07:05", "24:00")


def test_an_order_rule_needs_both_of_its_kinds() -> None:
    """Temperature's order pairs are checked only between kinds that are present."""
    from algorithms.alert_settings import order_problems
    from algorithms.rules import Rule, RuleKind
    from algorithms.sensors import SensorKind

    only_fever = (Rule(kind=RuleKind.FEVER, threshold=38.0),)
    assert order_problems(SensorKind.TEMPERATURE, only_fever) == []


def test_a_stored_rule_of_another_sensor_kind_is_ignored() -> None:
    """Settings stored under glucose that name a temperature rule change nothing."""
    from algorithms.rules import default_rules, effective_rules, with_mandatory
    from algorithms.sensors import SensorKind

    stored = {"glucose": [{"kind": "fever", "threshold": 38.0}]}
    expected = with_mandatory(default_rules(SensorKind.GLUCOSE), SensorKind.GLUCOSE)
    assert effective_rules(stored, "glucose") == expected
