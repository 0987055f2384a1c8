"""Finding 6: a follower must not see the alert's other recipients (their emails, user ids,
webhook URLs) and nobody sees the secrets in a webhook URL (user:password, query string)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from storage.migrate import MIGRATIONS_DIR
from tests.e2e.test_alerts import alerts_of, one_by_one, put_settings, share
from tests.e2e.test_delivery import Receiver, alert_owner_id, deliveries
from tests.helpers import Account, insert_device, minutes_ago, self_profile


@pytest.fixture
def receivers() -> Iterator[list[Receiver]]:
    made = [Receiver(), Receiver(), Receiver()]
    yield made
    for r in made:
        r.close()


def secret_url(receiver: Receiver, who: str) -> str:
    """The receiver's URL with credentials in the userinfo and the query string."""
    return receiver.url.replace("http://", f"http://{who}:pw-{who}@") + f"?token=tok-{who}"


def add_webhook(account: Account, url: str) -> None:
    r = account.client.post("/v1/webhooks", json={"url": url}, headers=account.headers)
    assert r.status_code == 201, r.text
    assert "pw-" not in r.json()["url"] and "tok-" not in r.json()["url"]


def own_deliveries(person: Account, alert_id: str) -> dict:
    """The alert as ``person`` sees it, once their webhook and email were delivered."""
    deliveries(
        person,
        alert_id,
        lambda d: {"webhook", "email"} <= {x["channel"] for x in d if x["status"] == "delivered"},
    )
    return person.client.get(f"/v1/alerts/{alert_id}", headers=person.headers).json()


def test_each_person_sees_only_their_own_deliveries_without_url_secrets(
    account: Account, db, smtp, receivers: list[Receiver]
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180}]})
    first = share(db, account, pid, ["alerts"])
    second = share(db, account, pid, ["alerts"])
    people = {"owner": account, "first": first, "second": second}
    for (who, person), receiver in zip(people.items(), receivers, strict=True):
        add_webhook(person, secret_url(receiver, who))
    one_by_one(account, device["id"], minutes_ago(5), 60, [220])
    for r in receivers:
        r.wait(lambda g: len(g) >= 1)
    (alert,) = alerts_of(account, pid)

    ids = {who: alert_owner_id(db, p) for who, p in people.items()}
    for (who, person), receiver in zip(people.items(), receivers, strict=True):
        seen = own_deliveries(person, alert["id"])
        assert {d["user_id"] for d in seen["deliveries"]} == {ids[who]}
        hooks = {d["target"] for d in seen["deliveries"] if d["channel"] == "webhook"}
        assert hooks == {receiver.url}  # no user:password, no ?token=
        emails = {d["target"] for d in seen["deliveries"] if d["channel"] == "email"}
        assert emails == {person.email}
        text = str(seen)
        for other, them in people.items():
            if other != who:
                assert ids[other] not in text and them.email not in text
        assert "pw-" not in text and "tok-" not in text
        listed = person.client.get("/v1/webhooks", headers=person.headers).json()
        assert [w["url"] for w in listed] == [receiver.url]


def test_the_delivery_log_written_before_the_fix_is_scrubbed(db) -> None:
    user, profile, device = insert_device(db)
    (alert,) = db.execute(
        "INSERT INTO alerts (id, profile_id, device_id, rule, severity, value, threshold,"
        " reading_ts, received_at, fired_at) VALUES (gen_random_uuid(), %s, %s, 'high',"
        " 'warning', 250, 180,"
        " now(), now(), now()) RETURNING id",
        (profile, device),
    ).fetchone()
    old = [
        ("https://me:pw@hooks.example.com:8443/in?token=t#f", "receiver answered 500"),
        ("http://10.0.0.5:5432/", "ConnectError: [Errno 111] Connection refused"),
        ("http://169.254.169.254/latest", "RemoteProtocolError: illegal header ami-id"),
    ]
    for target, detail in old:
        db.execute(
            "INSERT INTO alert_deliveries (alert_id, event, user_id, channel, target, status,"
            " detail) VALUES (%s, 'fired', %s, 'webhook', %s, 'failed', %s)",
            (alert, user, target, detail),
        )
    db.execute((MIGRATIONS_DIR / "0061_scrub_webhook_delivery_log.sql").read_text())
    rows = db.execute(
        "SELECT target, detail FROM alert_deliveries WHERE alert_id = %s ORDER BY id", (alert,)
    ).fetchall()
    assert rows == [
        ("https://hooks.example.com:8443/in", "receiver answered 500"),
        ("http://10.0.0.5:5432/", "delivery failed"),
        ("http://169.254.169.254/latest", "delivery failed"),
    ]
