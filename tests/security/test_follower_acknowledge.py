"""Finding 11b: an `alerts`-only follower's acknowledge or snooze applies to their own
notifications; the alert's shared state (repeats, escalation) changes only with the manager
or a `manage` follower, and records who."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import ray
from websockets.sync.client import connect

from actors.notifier import NOTIFIER_NAME
from algorithms.delivery import muted_for_self
from tests.e2e.test_alerts import alerts_of, one_by_one, put_settings, shard_of, share
from tests.e2e.test_delivery import Receiver, alert_owner_id, rules_of, urgent_low, webhook
from tests.e2e.test_stream import alerts_in, collect, token, ws_url
from tests.helpers import Account, minutes_ago, self_profile

REPEATING_HIGH = {"glucose": [{"kind": "high", "threshold": 180, "realert_min": 1}]}


@pytest.fixture
def receivers(account: Account, stack) -> Iterator[list[Receiver]]:
    """The manager's and the follower's webhooks, closed after the test once the manager has
    acknowledged every alert it left firing: no repeat or escalation still due goes to a
    closed webhook and keeps a later test's drain waiting."""
    made = [Receiver(), Receiver()]
    yield made
    for alert in alerts_of(account, self_profile(account)):
        if alert["state"] == "fired":
            act(account, alert["id"], "ack")
    drain(stack)
    for r in made:
        r.close()


def drain(stack) -> None:
    notifier = ray.get_actor(NOTIFIER_NAME, namespace=stack.settings.namespace)
    assert ray.get(notifier.drain.remote(30)) == 0


def act(person: Account, alert_id: str, action: str):
    body = {"minutes": 60} if action == "snooze" else None
    r = person.client.post(f"/v1/alerts/{alert_id}/{action}", json=body, headers=person.headers)
    assert r.status_code == 200, r.text
    return r.json()


def high_alert_watched(account: Account, db, stack, receivers: list[Receiver]) -> tuple:
    """A high alert (repeating every minute) that reached the manager's and an `alerts`-only
    follower's webhooks: ``(shard, watcher, alert)``.

    Its reading is 20 s old, so the shard's 30-second clock cannot repeat it for another 40 s:
    what the test does next comes first. The test then moves the clock itself
    (`minutes_pass`), not by readings uploaded one by one: a clock tick between two of those
    would repeat the alert at the wall-clock time and take the place of every later repeat.
    """
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, REPEATING_HIGH)
    watcher = share(db, account, pid, ["alerts"])
    owners, watchers = receivers
    webhook(account, owners)
    webhook(watcher, watchers)
    one_by_one(account, device["id"], datetime.now(UTC) - timedelta(seconds=20), 60, [220])
    watchers.wait(lambda g: len(g) >= 1)
    (alert,) = alerts_of(account, pid)
    return shard_of(stack, device["id"]), watcher, alert


def minutes_pass(shard, minutes: int) -> None:
    """The shard's clock one, two, ... ``minutes`` from now: each tick is a minute past the
    last, so each is due to repeat an open every-minute alert (the wall-clock ticker's
    repeats come at most once before them, not after)."""
    now = time.time()
    for i in range(1, minutes + 1):
        ray.get(shard.tick.remote(now + 60 * i))


@pytest.mark.parametrize("action", ["ack", "snooze"])
def test_an_alerts_only_followers_action_is_their_own(
    account: Account, db, stack, receivers: list[Receiver], action: str
) -> None:
    shard, watcher, alert = high_alert_watched(account, db, stack, receivers)
    owners, watchers = receivers

    out = act(watcher, alert["id"], action)
    assert out["state"] == "fired" and out["snoozed_until"] is None  # shared state as it was
    mine = out["my_acknowledged_at"] if action == "ack" else out["my_snoozed_until"]
    assert mine is not None
    minutes_pass(shard, 3)  # the alert repeats to the manager
    repeats = owners.wait(lambda g: rules_of(g).count(("high", "alert.repeated")) >= 3)
    assert rules_of(repeats).count(("high", "alert.repeated")) >= 3, rules_of(repeats)
    drain(stack)
    assert rules_of(watchers.delivered()) == [("high", "alert.fired")]
    seen_by_owner = account.client.get(f"/v1/alerts/{alert['id']}", headers=account.headers)
    assert seen_by_owner.json()["my_acknowledged_at"] is None
    assert len(seen_by_owner.json()["notified_at"]) >= 4


def test_an_alerts_only_followers_acknowledgement_leaves_the_escalation_to_the_manager(
    account: Account, db, stack, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    watcher = share(db, account, pid, ["alerts"])
    owners, watchers = receivers
    webhook(account, owners)
    webhook(watcher, watchers)
    one_by_one(account, device["id"], minutes_ago(8), 60, [45, 44])
    watchers.wait(urgent_low)
    (alert,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]
    assert act(watcher, alert["id"], "ack")["state"] == "fired"

    notifier = ray.get_actor(NOTIFIER_NAME, namespace=stack.settings.namespace)
    assert ray.get(notifier.escalate_due.remote(time.time() + 16 * 60)) >= 1
    owners.wait(lambda g: ("urgent_low", "alert.escalated") in rules_of(g))
    drain(stack)
    assert ("urgent_low", "alert.escalated") not in rules_of(watchers.delivered())


def test_the_managers_acknowledgement_ends_repeats_for_everyone_recording_who(
    account: Account, db, stack, receivers: list[Receiver]
) -> None:
    shard, watcher, alert = high_alert_watched(account, db, stack, receivers)
    owners, watchers = receivers
    out = act(account, alert["id"], "ack")
    assert out["state"] == "acknowledged"
    assert out["acknowledged_by"] == alert_owner_id(db, account)
    minutes_pass(shard, 3)
    drain(stack)
    for hook in (owners, watchers):
        assert rules_of(hook.delivered()) == [("high", "alert.fired")]
    seen = watcher.client.get(f"/v1/alerts/{alert['id']}", headers=watcher.headers).json()
    assert seen["acknowledged_by"] == alert_owner_id(db, account)


def test_a_manage_followers_snooze_is_shared_and_recorded(account: Account, db) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, REPEATING_HIGH)
    carer = share(db, account, pid, ["alerts", "manage"])
    one_by_one(account, device["id"], minutes_ago(5), 60, [220])
    (alert,) = alerts_of(account, pid)
    out = act(carer, alert["id"], "snooze")
    assert out["snoozed_until"] is not None and out["snoozed_by"] == alert_owner_id(db, carer)
    assert out["my_snoozed_until"] is None


NOW = 1_000_000.0
ACKED = {"acknowledged_for_self": True, "snoozed_for_self_until": None}
SNOOZED = {"acknowledged_for_self": False, "snoozed_for_self_until": NOW + 60}
SNOOZE_OVER = {"acknowledged_for_self": False, "snoozed_for_self_until": NOW - 1}
NOTHING = {"acknowledged_for_self": False, "snoozed_for_self_until": None}


@pytest.mark.parametrize(
    ("person", "event", "muted"),
    [
        (ACKED, "fired", False),
        (ACKED, "repeated", True),
        (ACKED, "escalated", True),
        (SNOOZED, "repeated", True),
        (SNOOZED, "escalated", False),  # a snooze holds back repeats, not the escalation
        (SNOOZE_OVER, "repeated", False),
        (NOTHING, "repeated", False),
        (NOTHING, "escalated", False),
    ],
)
def test_what_a_personal_action_holds_back(person: dict, event: str, muted: bool) -> None:
    assert muted_for_self(person, event, NOW) is muted


def test_the_followers_own_acknowledgement_also_quiets_their_live_stream(
    account: Account, db, stack, receivers: list[Receiver]
) -> None:
    shard, watcher, alert = high_alert_watched(account, db, stack, receivers)
    act(watcher, alert["id"], "ack")
    headers = {"Authorization": account.headers["Authorization"]}
    with (
        connect(ws_url(stack), additional_headers=headers) as owner_ws,
        connect(ws_url(stack, token=token(watcher))) as watcher_ws,
    ):
        for ws in (owner_ws, watcher_ws):
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        minutes_pass(shard, 3)
        owner = collect(owner_ws, lambda ms: alerts_in(ms).count(("high", "repeated")) >= 3)
        watched = collect(watcher_ws, lambda ms: False, timeout_s=2)
    assert alerts_in(owner).count(("high", "repeated")) >= 3
    assert ("high", "repeated") not in alerts_in(watched)
