"""A revoked follower is refused on the very next request after the revoke commits, even
with a token the replica has already verified and remembers (api/tokens.py caches the
signature check, never the grant: the statement that reads checks the share)."""

from __future__ import annotations

import httpx

from tests.e2e.test_sharing import follow
from tests.helpers import Account, minutes_ago, self_profile, series


def reads(device_id: str) -> list[str]:
    base = f"/v1/devices/{device_id}"
    return [f"{base}/latest", f"{base}/readings", f"{base}/readings?limit=1"]


def statuses(client: httpx.Client, follower: Account, paths: list[str]) -> list[int]:
    return [client.get(p, headers=follower.headers).status_code for p in paths]


def test_a_revoked_follower_is_refused_on_the_next_request(account: Account) -> None:
    c = account.client
    pid = self_profile(account)
    cgm = account.device("glucose")
    assert account.upload(cgm["id"], series(minutes_ago(20), 4, 300, 120, 0)).status_code == 200
    follower, share = follow(account, pid, ["readings"])
    paths = reads(cgm["id"])
    for _ in range(3):  # the follower's token is verified and remembered by now
        assert statuses(c, follower, paths) == [200, 200, 200]
    revoke = c.delete(f"/v1/profiles/{pid}/shares/{share['id']}", headers=account.headers)
    assert revoke.status_code == 200 and revoke.json()["state"] == "revoked"
    assert statuses(c, follower, paths) == [404, 404, 404]
    # The same token still works where the follower has access of their own.
    assert c.get("/v1/shares/following", headers=follower.headers).json() == []


def test_a_revoke_committed_elsewhere_or_a_lost_scope_counts_at_once(account: Account, db) -> None:
    c = account.client
    pid = self_profile(account)
    cgm = account.device("glucose")
    assert account.upload(cgm["id"], series(minutes_ago(20), 2, 300, 130, 0)).status_code == 200
    narrowed, narrowed_share = follow(account, pid, ["readings", "alerts"])
    revoked, revoked_share = follow(account, pid, ["readings"])
    paths = reads(cgm["id"])
    for follower in (narrowed, revoked):
        assert statuses(c, follower, paths) == [200, 200, 200]
    # Committed by another process (another replica, an operator): no cache to expire.
    db.execute("UPDATE shares SET scopes = '{alerts}' WHERE id = %s", (narrowed_share["id"],))
    db.execute(
        "UPDATE shares SET state = 'revoked', ended_at = now() WHERE id = %s",
        (revoked_share["id"],),
    )
    assert statuses(c, narrowed, paths) == [403, 403, 403]
    assert statuses(c, revoked, paths) == [404, 404, 404]
