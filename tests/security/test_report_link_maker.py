"""Finding 8: a report link stops working when its maker loses the permission to make it
(share revoked, `manage` scope removed, account disabled or deleted), checked at open time."""

from __future__ import annotations

import pytest

from tests.e2e.test_alerts import share
from tests.helpers import Account, self_profile

LOSSES = {
    "share revoked": "UPDATE shares SET state = 'revoked' WHERE follower_id = {maker}",
    "scope reduced": "UPDATE shares SET scopes = ARRAY['readings', 'alerts']"
    " WHERE follower_id = {maker}",
    "account disabled": "UPDATE users SET disabled_at = now() WHERE id = {maker}",
    "account deleted": "DELETE FROM users WHERE id = {maker}",
}


def make_link(person: Account, pid: str) -> str:
    r = person.client.post(
        f"/v1/profiles/{pid}/report-links", json={"days": 7}, headers=person.headers
    )
    assert r.status_code == 201, r.text
    return f"/v1/report-links/{r.json()['token']}"


def opens(account: Account, url: str) -> int:
    return account.client.get(url, params={"format": "json"}).status_code


@pytest.mark.parametrize("loss", LOSSES.values(), ids=LOSSES.keys())
def test_a_link_ends_with_its_makers_permission(account: Account, db, loss: str) -> None:
    pid = self_profile(account)
    carer = share(db, account, pid, ["readings", "manage"])
    carers_link, owners_link = make_link(carer, pid), make_link(account, pid)
    assert opens(account, carers_link) == 200 and opens(account, owners_link) == 200
    (maker,) = db.execute("SELECT id FROM users WHERE email = %s", (carer.email,)).fetchone()
    db.execute(loss.format(maker="%s"), (maker,))
    assert opens(account, carers_link) == 404
    assert opens(account, owners_link) == 200  # the manager's own link is unaffected


def test_a_link_of_a_manager_who_was_disabled_stops(account: Account, db) -> None:
    pid = self_profile(account)
    link = make_link(account, pid)
    assert opens(account, link) == 200
    db.execute("UPDATE users SET disabled_at = now() WHERE email = %s", (account.email,))
    assert opens(account, link) == 404
