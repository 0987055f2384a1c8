"""Alert delivery off the ingest path: webhooks (signed, retried, logged), email, escalation."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import ray
from standardwebhooks import Webhook, WebhookVerificationError

from actors.notifier import NOTIFIER_NAME
from storage.embedded import free_port
from storage.notifications import new_webhook_secret
from tests.e2e.test_alerts import FALL, alerts_of, one_by_one, put_settings, share
from tests.helpers import Account, minutes_ago, self_profile, sign_up


class Receiver:
    """A local webhook receiver: answers 500 to the first ``fail_first`` POSTs (or hangs
    ``hang_s`` on each), then 200 (or ``answer`` while that is set); keeps every request.
    ``port``: listen where an earlier receiver did (one that was down comes back)."""

    def __init__(self, fail_first: int = 0, hang_s: float = 0.0, port: int | None = None) -> None:
        self.fail_first, self.hang_s = fail_first, hang_s
        self.answer: int | None = None
        self.requests: list[tuple[dict, bytes, int]] = []
        self.cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if receiver.hang_s:
                    time.sleep(receiver.hang_s)  # a receiver that never answers in time
                with receiver.cond:
                    code = 500 if len(receiver.requests) < receiver.fail_first else 200
                    code = code if receiver.answer is None else receiver.answer
                    receiver.requests.append((dict(self.headers), body, code))
                    receiver.cond.notify_all()
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port or free_port()), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def delivered(self) -> list[dict]:
        """The payloads answered 200 (with their headers under ``_headers``)."""
        with self.cond:
            return [json.loads(b) | {"_headers": h} for h, b, code in self.requests if code == 200]

    def wait(self, pred, timeout_s: float = 30) -> list[dict]:
        """The payloads delivered, once ``pred`` holds for them; AssertionError after
        ``timeout_s``."""
        with self.cond:  # re-entrant: delivered() takes it again
            met = self.cond.wait_for(lambda: pred(self.delivered()), timeout_s)
            got = self.delivered()
        assert met, f"timed out after {timeout_s} s; the webhook got {rules_of(got)}"
        return got

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()  # refuses connections from now on


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made: list[Receiver] = []
    yield made
    for r in made:
        r.close()


def webhook(account: Account, receiver: Receiver) -> str:
    r = account.client.post("/v1/webhooks", json={"url": receiver.url}, headers=account.headers)
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def rules_of(payloads: list[dict]) -> list[tuple[str, str]]:
    return [(p["alert"]["rule"], p["event"]) for p in payloads]


def urgent_low(got: list[dict]) -> bool:
    return ("urgent_low", "alert.fired") in rules_of(got)


def deliveries(account: Account, alert_id: str, pred, timeout_s: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while True:
        r = account.client.get(f"/v1/alerts/{alert_id}", headers=account.headers)
        got = r.json()["deliveries"]
        if pred(got) or time.monotonic() > deadline:
            return got
        time.sleep(0.2)


def test_urgent_low_reaches_owner_and_alerts_follower_by_webhook_and_email_only(
    account: Account, db, smtp, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    watcher = share(db, account, pid, ["alerts"])
    reader = share(db, account, pid, ["readings"])
    receivers += [Receiver(), Receiver(), Receiver()]
    mine, theirs, readers = receivers
    secrets = [webhook(account, mine), webhook(watcher, theirs), webhook(reader, readers)]
    one_by_one(account, device["id"], minutes_ago(12), 30, FALL)

    for hook, secret in ((mine, secrets[0]), (theirs, secrets[1])):
        got = hook.wait(urgent_low)
        fired = [rule for rule, event in rules_of(got) if event == "alert.fired"]
        assert fired.index("urgent_low_soon") < fired.index("urgent_low"), fired
        for payload, (headers, body, _code) in zip(
            got, [x for x in hook.requests if x[2] == 200], strict=True
        ):
            assert payload["alert"]["profile_id"] == pid
            assert Webhook(secret).verify(body, headers)["alert"]["profile_id"] == pid
            with pytest.raises(WebhookVerificationError):
                Webhook(new_webhook_secret()).verify(body, headers)

    for person in (account, watcher):
        smtp.inbox.wait_for(person.email, count=3)  # urgent low soon, low, urgent low
        subjects = [m["Subject"] for m in smtp.inbox.to(person.email)]
        assert "Vigil: URGENT: urgent low soon" in subjects, subjects
        assert "Vigil: URGENT: urgent low" in subjects, subjects

    (alert,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]
    for person, hook in ((account, mine), (watcher, theirs)):
        log = deliveries(
            person,
            alert["id"],
            lambda d: (
                {"webhook", "email"} <= {x["channel"] for x in d if x["status"] == "delivered"}
            ),
        )
        webhooks = [x for x in log if x["channel"] == "webhook" and x["status"] == "delivered"]
        assert [x["target"] for x in webhooks] == [hook.url]
        assert {x["user_id"] for x in log} == {alert_owner_id(db, person)}  # only their own
        assert {x["channel"] for x in log} >= {"webhook", "email"}
    assert readers.delivered() == [] and smtp.inbox.to(reader.email) == []


def alert_owner_id(db, account: Account) -> str:
    return str(
        db.execute(
            "SELECT id FROM users WHERE lower(email) = lower(%s)", (account.email,)
        ).fetchone()[0]
    )


def test_a_receiver_failing_three_times_gets_the_alert_exactly_once(
    account: Account, db, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180}]})
    receivers.append(Receiver(fail_first=3))
    (hook,) = receivers
    secret = webhook(account, hook)
    one_by_one(account, device["id"], minutes_ago(5), 60, [200])
    got = hook.wait(lambda g: len(g) >= 1)
    assert rules_of(got) == [("high", "alert.fired")]
    assert Webhook(secret).verify(hook.requests[-1][1], got[0]["_headers"])["event"]
    assert len({headers["webhook-id"] for headers, _, _ in hook.requests}) == 1  # one delivery
    (alert,) = alerts_of(account, pid)
    log = deliveries(account, alert["id"], lambda d: any(x["status"] == "delivered" for x in d))
    webhooks = [(x["attempt"], x["status"]) for x in log if x["channel"] == "webhook"]
    assert webhooks == [(1, "retrying"), (2, "retrying"), (3, "retrying"), (4, "delivered")]
    assert len(hook.requests) == 4 and len(hook.delivered()) == 1


def test_a_rotated_webhook_secret_signs_beside_the_new_one(
    account: Account, client, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180}]})
    receivers.append(Receiver())
    (hook,) = receivers
    old = webhook(account, hook)
    (listed,) = account.client.get("/v1/webhooks", headers=account.headers).json()
    path = f"/v1/webhooks/{listed['id']}/rotate-secret"
    stranger = sign_up(client)
    assert stranger.client.post(path, headers=stranger.headers).status_code == 404
    r = account.client.post(path, headers=account.headers)
    assert r.status_code == 200, r.text
    new = r.json()["secret"]
    assert new != old and new.startswith("whsec_")
    until = datetime.fromisoformat(r.json()["previous_secret_expires_at"])
    assert timedelta(hours=23) < until - datetime.now(UTC) <= timedelta(hours=24)
    one_by_one(account, device["id"], minutes_ago(5), 60, [200])
    hook.wait(lambda g: len(g) >= 1)
    (headers, body, _) = hook.requests[0]
    for secret in (new, old):
        assert Webhook(secret).verify(body, headers)["event"] == "alert.fired"


def test_a_receiver_that_never_answers_does_not_hold_up_ingest(
    account: Account, stack, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180, "realert_min": 1}]})
    receivers.append(Receiver(hang_s=8))
    webhook(account, receivers[0])
    start = minutes_ago(8)
    for i in range(6):  # each reading repeats the high alert: a delivery per reading
        ts = (start + timedelta(minutes=i)).isoformat()
        assert account.upload(device["id"], [{"ts": ts, "value": 220}]).status_code == 200
    (alert,) = alerts_of(account, pid)
    # Every upload was answered while the receiver still held the first delivery.
    assert len(alert["notified_at"]) >= 5
    assert not any(
        x["status"] == "delivered" and x["channel"] == "webhook"
        for x in account.client.get(f"/v1/alerts/{alert['id']}", headers=account.headers).json()[
            "deliveries"
        ]
    )
    notifier = ray.get_actor(NOTIFIER_NAME, namespace=stack.settings.namespace)
    assert ray.get(notifier.status.remote())["in_flight"] >= 1


def test_quiet_hours_of_a_follower_hold_back_high_but_not_urgent_low(
    account: Account, db, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180}]})
    night_owl = share(db, account, pid, ["alerts"])
    r = night_owl.client.put(
        f"/v1/profiles/{pid}/notification-preferences",
        json={"quiet": [{"start": "00:00", "end": "24:00"}], "channels": ["webhook"]},
        headers=night_owl.headers,
    )
    assert r.status_code == 200, r.text
    receivers += [Receiver(), Receiver()]
    owners, owls = receivers
    webhook(account, owners)
    webhook(night_owl, owls)
    one_by_one(account, device["id"], minutes_ago(10), 60, [220, 220])
    owners.wait(lambda g: ("high", "alert.fired") in rules_of(g))
    one_by_one(account, device["id"], minutes_ago(7), 60, [45, 44])
    got = owls.wait(urgent_low)
    assert ("urgent_low", "alert.fired") in rules_of(got)
    assert ("high", "alert.fired") not in rules_of(got)
    assert ("high", "alert.fired") in rules_of(owners.delivered())


def test_unacknowledged_urgent_low_is_escalated_to_escalation_only_followers(
    account: Account, db, stack, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    backup = share(db, account, pid, ["alerts"])
    r = backup.client.put(
        f"/v1/profiles/{pid}/notification-preferences",
        json={"escalation_only": True, "channels": ["webhook"]},
        headers=backup.headers,
    )
    assert r.status_code == 200 and r.json()["escalation_only"] is True
    receivers += [Receiver(), Receiver()]
    owners, backups = receivers
    webhook(account, owners)
    webhook(backup, backups)
    one_by_one(account, device["id"], minutes_ago(8), 60, [45, 44])
    owners.wait(urgent_low)
    assert backups.delivered() == []
    (alert,) = [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"]

    notifier = ray.get_actor(NOTIFIER_NAME, namespace=stack.settings.namespace)
    alert_url = f"/v1/alerts/{alert['id']}"
    # escalate_due counts every profile's alerts (earlier tests' too): this one's effect is
    # what is checked.
    ray.get(notifier.escalate_due.remote(time.time() + 60))  # not due yet
    assert account.client.get(alert_url, headers=account.headers).json()["escalated_at"] is None
    assert ray.get(notifier.escalate_due.remote(time.time() + 16 * 60)) >= 1
    got = backups.wait(lambda g: len(g) >= 1)
    assert rules_of(got) == [("urgent_low", "alert.escalated")]
    owners.wait(lambda g: ("urgent_low", "alert.escalated") in rules_of(g))
    after = account.client.get(alert_url, headers=account.headers).json()
    assert after["escalated_at"] is not None
    ray.get(notifier.escalate_due.remote(time.time() + 16 * 60))  # only once:
    again = account.client.get(alert_url, headers=account.headers).json()
    assert again["escalated_at"] == after["escalated_at"]
    assert rules_of(backups.delivered()) == [("urgent_low", "alert.escalated")]


def test_preferences_and_endpoints_are_per_person(account: Account, db) -> None:
    pid = self_profile(account)
    reader = share(db, account, pid, ["readings"])
    url = f"/v1/profiles/{pid}/notification-preferences"
    assert account.client.get(url, headers=account.headers).json()["channels"] == [
        "stream",
        "push",
        "email",
        "webhook",
    ]
    assert reader.client.get(url, headers=reader.headers).status_code == 403
    bad = account.client.put(url, json={"channels": ["pigeon"]}, headers=account.headers)
    assert bad.status_code == 422
    t = account.client.post(
        "/v1/push-tokens", json={"platform": "fcm", "token": "tok-123456"}, headers=account.headers
    )
    assert t.status_code == 201
    mine = account.client.get("/v1/push-tokens", headers=account.headers).json()
    assert [x["token"] for x in mine] == ["tok-123456"]
    gone = account.client.delete(f"/v1/push-tokens/{t.json()['id']}", headers=reader.headers)
    assert gone.status_code == 404


def test_quiet_hours_default_to_the_profiles_time_zone(account: Account) -> None:
    made = account.client.post(
        "/v1/profiles",
        json={"name": "Mia", "timezone": "Pacific/Auckland"},
        headers=account.headers,
    )
    assert made.status_code == 201, made.text
    url = f"/v1/profiles/{made.json()['id']}/notification-preferences"
    r = account.client.put(
        url, json={"quiet": [{"start": "22:00", "end": "07:00"}]}, headers=account.headers
    )
    assert r.status_code == 200, r.text
    assert r.json()["timezone"] == "Pacific/Auckland"
    assert account.client.get(url, headers=account.headers).json()["timezone"] == "Pacific/Auckland"
