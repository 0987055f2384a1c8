"""Who gets an alert event: the pure rules of delivery, beside the alert rules themselves.

A person's notification preferences (rules, channels, quiet hours, escalation only) and what
they acknowledged or snoozed for themselves decide whether an event reaches them; urgent
alerts always pass quiet hours and rule choices. The alert notifier (webhook, push, email)
and the live streams apply the same rules, so they live here, with time passed in.
A recipient is the mapping :mod:`storage.notifications` reads (keys ``rules``, ``channels``,
``quiet``, ``timezone``, ``escalation_only`` and, per alert, ``acknowledged_for_self`` and
``snoozed_for_self_until``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
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
