"""Who gets an alert event: the pure rules of delivery, beside the alert rules themselves.

A person's notification preferences (rules, channels, quiet hours, escalation only) and what
they acknowledged or snoozed for themselves decide whether an event reaches them; urgent
alerts always pass quiet hours and rule choices. The alert notifier (webhook, push, email)
and the live streams apply the same rules, so they live here, with time passed in; so does
the retry schedule of a delivery that failed for now (:class:`RetrySchedule`), which the
notifier keeps in the database so that a receiver down for an hour still gets the alert.
A recipient is the mapping :mod:`storage.notifications` reads (keys ``rules``, ``channels``,
``quiet``, ``timezone``, ``escalation_only`` and, per alert, ``acknowledged_for_self`` and
``snoozed_for_self_until``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from algorithms.localtime import local_weekday_and_minute
from algorithms.rules import QuietPeriod

Recipient = Mapping[str, Any]


class Notice(Protocol):
    """What the rules need of an alert event (``storage.live.LiveAlert`` is one)."""

    @property
    def id(self) -> object: ...

    @property
    def rule(self) -> str: ...

    @property
    def urgent(self) -> bool: ...


def in_quiet(quiet: Sequence[Mapping[str, Any]], timezone: str, now_s: float) -> bool:
    """Is ``now_s`` inside one of the person's quiet periods (in their time zone)?"""
    if not quiet:
        return False
    wd, minute = local_weekday_and_minute(np.array([now_s]), timezone)
    for q in quiet:
        period = QuietPeriod(
            int(q["start_min"]), int(q["end_min"]), tuple(q.get("weekdays", range(7)))
        )
        if bool(period.contains(wd, minute)[0]):
            return True
    return False


def wants(recipient: Recipient, a: Notice, event: str, now_s: float) -> bool:
    """Does this person get this alert event outside the live stream?"""
    if event == "escalated":
        return True
    if event not in ("fired", "repeated") or recipient["escalation_only"]:
        return False
    rules = recipient["rules"]
    if rules is not None and a.rule not in rules:
        return a.urgent
    return a.urgent or not in_quiet(recipient["quiet"], recipient["timezone"], now_s)


def muted_for_self(recipient: Recipient, event: str, now_s: float) -> bool:
    """Did this person acknowledge (or snooze) this alert for themselves? Then its repeats
    (and, once acknowledged, its escalation) no longer reach them; others are unaffected."""
    if event not in ("repeated", "escalated"):
        return False
    if recipient.get("acknowledged_for_self"):
        return True
    until = recipient.get("snoozed_for_self_until")
    return event == "repeated" and until is not None and until > now_s


def stream_wants(recipient: Recipient | None, a: Notice, event: str, now_s: float) -> bool:
    """Does this person's live stream show this alert event? With no preferences saved,
    every event; with ``stream`` not among their channels, none; otherwise by rules and quiet
    hours like the other channels (urgent passes), and a clear wherever the alert could show.
    ``for_self``: what they acknowledged or snoozed for themselves, by alert id (text)."""
    if recipient is None:
        return True
    mine = recipient.get("for_self", {}).get(str(a.id))
    if mine is not None and muted_for_self(mine, event, now_s):
        return False
    if "stream" not in recipient["channels"]:
        return False
    if event in ("fired", "repeated", "escalated"):
        return wants(recipient, a, event, now_s)
    rules = recipient["rules"]
    return not recipient["escalation_only"] and (rules is None or a.rule in rules or a.urgent)


# -- retries of a delivery that failed for now ----------------------------------------------


@dataclass(frozen=True, slots=True)
class RetrySchedule:
    """Exponential backoff over a horizon: after the n-th failed attempt the next comes
    ``base_s * factor ** (n - 1)`` seconds later, at most ``max_s``; none is made later than
    ``horizon_s`` after the first (the delivery is then given up, and shown so)."""

    base_s: float = 0.5
    factor: float = 2.0
    max_s: float = 120.0
    horizon_s: float = 3600.0

    def __post_init__(self) -> None:
        if not (self.base_s > 0 and math.isfinite(self.base_s)):
            raise ValueError("delivery_retry_base_s must be a positive number of seconds")
        if not (self.factor >= 1 and math.isfinite(self.factor)):
            raise ValueError("delivery_retry_factor must be at least 1")
        if not (self.base_s <= self.max_s and math.isfinite(self.max_s)):
            raise ValueError("delivery_retry_max_s must be at least the base")
        if not (self.horizon_s >= self.base_s and math.isfinite(self.horizon_s)):
            raise ValueError("delivery_retry_horizon_s must be at least the base")

    def interval_s(self, failed: int) -> float:
        """The wait after the ``failed``-th failed attempt (1-based), before any hint."""
        exponent = min(failed - 1, 1024)  # beyond, the cap holds anyway (no float overflow)
        if self.factor > 1 and exponent * math.log(self.factor) > math.log(
            self.max_s / self.base_s
        ):
            return self.max_s
        return min(self.base_s * self.factor**exponent, self.max_s)

    def next_attempt_s(
        self, failed: int, first_s: float, now_s: float, hint_s: float | None = None
    ) -> float | None:
        """When to try again after ``failed`` attempts, the first at ``first_s``, the last
        ending at ``now_s``; ``hint_s``: the receiver's Retry-After (kept within 0 and
        ``max_s``). None: past the horizon, give up."""
        wait = self.interval_s(failed) if hint_s is None else min(max(hint_s, 0.0), self.max_s)
        at = now_s + wait
        return at if at <= first_s + self.horizon_s else None

    def attempts(self, send_s: float = 0.0) -> list[float]:
        """Every attempt's time after the first (0) when none succeeds and each takes
        ``send_s``: the whole schedule, to document what outage it outlasts."""
        times = [0.0]
        while True:
            at = self.next_attempt_s(len(times), 0.0, times[-1] + send_s)
            if at is None:
                return times
            times.append(at)

    def reached_after(self, outage_s: float, send_s: float = 0.0) -> float | None:
        """A receiver down for ``outage_s`` from the first attempt: how long after it comes
        back the delivery arrives, or None if the schedule gives up first."""
        after = [t for t in self.attempts(send_s) if t >= outage_s]
        return after[0] - outage_s if after else None
