"""Sharing over HTTP: invite, accept, follow, revoke, leave; codes work once and expire."""

from __future__ import annotations

import uuid

from tests.helpers import Account, minutes_ago, self_profile, series, sign_up


def invite(owner: Account, profile_id: str, scopes: list[str], **extra) -> dict:
    r = owner.client.post(
        f"/v1/profiles/{profile_id}/shares",
        json={"email": f"f-{uuid.uuid4().hex[:8]}@example.com", "scopes": scopes, **extra},
        headers=owner.headers,
    )
    assert r.status_code == 201, r.text
    return r.json()


def follow(owner: Account, profile_id: str, scopes: list[str]) -> tuple[Account, dict]:
    follower = sign_up(owner.client)
    code = invite(owner, profile_id, scopes)["code"]
    r = owner.client.post("/v1/shares/accept", json={"code": code}, headers=follower.headers)
    assert r.status_code == 200, r.text
    return follower, r.json()


def test_invite_accept_read_then_revoke_denies_the_next_read(account: Account) -> None:
    c = account.client
    pid = self_profile(account)
    cgm = account.device("glucose")
    assert account.upload(cgm["id"], series(minutes_ago(20), 4, 300, 120, 0)).status_code == 200

    invitation = invite(account, pid, ["readings", "alerts"])
    assert invitation["state"] == "pending" and invitation["code"]
    follower = sign_up(c)
    latest = f"/v1/devices/{cgm['id']}/latest"
    assert c.get(latest, headers=follower.headers).status_code == 404  # not yet

    r = c.post("/v1/shares/accept", json={"code": invitation["code"]}, headers=follower.headers)
    assert r.status_code == 200, r.text
    share = r.json()
    assert share["state"] == "active"
    assert share["follower_email"] == follower.email  # who accepted, whatever the invited email
    assert share["scopes"] == ["alerts", "readings"]

    r = c.get(latest, headers=follower.headers)
    assert r.status_code == 200, r.text
    assert r.json()["value"] == 120
    followed = c.get("/v1/shares/following", headers=follower.headers).json()
    assert [(s["id"], s["profile_id"]) for s in followed] == [(share["id"], pid)]
    listed = c.get(f"/v1/profiles/{pid}/shares", headers=account.headers).json()
    assert [(s["id"], s["state"]) for s in listed] == [(share["id"], "active")]
    profiles = c.get("/v1/profiles", headers=follower.headers).json()
    assert {(p["id"], p["role"]) for p in profiles} >= {(pid, "follower")}

    r = c.delete(f"/v1/profiles/{pid}/shares/{share['id']}", headers=account.headers)
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "revoked"
    assert c.get(latest, headers=follower.headers).status_code == 404
    assert c.get(f"/v1/profiles/{pid}", headers=follower.headers).status_code == 404
    assert c.get("/v1/shares/following", headers=follower.headers).json() == []
    # the used code does not bring access back
    r = c.post("/v1/shares/accept", json={"code": invitation["code"]}, headers=follower.headers)
    assert r.status_code == 409 and "used already" in r.json()["detail"]


def test_scopes_decide_what_a_follower_may_do(account: Account) -> None:
    c = account.client
    pid = self_profile(account)
    cgm = account.device("glucose")
    batch = series(minutes_ago(20), 4, 300, 130, 0)
    assert account.upload(cgm["id"], batch).status_code == 200

    alerts_only, _ = follow(account, pid, ["alerts"])
    r = c.get(f"/v1/devices/{cgm['id']}/latest", headers=alerts_only.headers)
    assert r.status_code == 403 and "'readings'" in r.json()["detail"]
    assert alerts_only.upload(cgm["id"], batch).status_code == 403
    assert c.get(f"/v1/profiles/{pid}", headers=alerts_only.headers).status_code == 200

    caregiver, _ = follow(account, pid, ["manage"])
    r = caregiver.upload(cgm["id"], series(minutes_ago(2), 1, 300, 131, 0))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == 1
    # a follower, even with manage, cannot invite, list or revoke followers
    r = c.post(
        f"/v1/profiles/{pid}/shares",
        json={"email": "x@example.com", "scopes": ["readings"]},
        headers=caregiver.headers,
    )
    assert r.status_code == 403
    assert c.get(f"/v1/profiles/{pid}/shares", headers=caregiver.headers).status_code == 403
    stranger = sign_up(c)
    assert c.get(f"/v1/profiles/{pid}/shares", headers=stranger.headers).status_code == 404


def test_a_follower_can_leave(account: Account) -> None:
    c = account.client
    pid = self_profile(account)
    cgm = account.device("temperature")
    follower, share = follow(account, pid, ["readings"])
    assert c.get(f"/v1/devices/{cgm['id']}", headers=follower.headers).status_code == 200
    stranger = sign_up(c)
    r = c.post(f"/v1/shares/{share['id']}/leave", headers=stranger.headers)
    assert r.status_code == 404  # not theirs to end
    r = c.post(f"/v1/shares/{share['id']}/leave", headers=follower.headers)
    assert r.status_code == 200 and r.json()["state"] == "left"
    assert c.get(f"/v1/devices/{cgm['id']}", headers=follower.headers).status_code == 404
    assert c.get(f"/v1/profiles/{pid}/shares", headers=account.headers).json() == []
    assert c.post(f"/v1/shares/{share['id']}/leave", headers=follower.headers).status_code == 404


def test_codes_are_refused_when_expired_declined_unknown_or_own(account: Account, db) -> None:
    c = account.client
    pid = self_profile(account)
    invitee = sign_up(c)

    stale = invite(account, pid, ["readings"])
    db.execute(
        "UPDATE shares SET expires_at = now() - interval '1 minute' WHERE id = %s",
        (stale["id"],),
    )
    r = c.post("/v1/shares/accept", json={"code": stale["code"]}, headers=invitee.headers)
    assert r.status_code == 409 and "expired" in r.json()["detail"]

    declined = invite(account, pid, ["readings"])
    r = c.post("/v1/shares/decline", json={"code": declined["code"]}, headers=invitee.headers)
    assert r.status_code == 200 and r.json()["state"] == "declined"
    r = c.post("/v1/shares/accept", json={"code": declined["code"]}, headers=invitee.headers)
    assert r.status_code == 409 and "declined" in r.json()["detail"]

    withdrawn = invite(account, pid, ["readings"])
    r = c.delete(f"/v1/profiles/{pid}/shares/{withdrawn['id']}", headers=account.headers)
    assert r.status_code == 200
    r = c.post("/v1/shares/accept", json={"code": withdrawn["code"]}, headers=invitee.headers)
    assert r.status_code == 409 and "withdrawn" in r.json()["detail"]

    r = c.post("/v1/shares/accept", json={"code": "no-such-code"}, headers=invitee.headers)
    assert r.status_code == 404 and "not recognised" in r.json()["detail"]
    own = invite(account, pid, ["readings"])
    r = c.post("/v1/shares/accept", json={"code": own["code"]}, headers=account.headers)
    assert r.status_code == 409 and "you manage this profile" in r.json()["detail"]
    # expired, declined and withdrawn invitations are not listed; the open one is
    listed = c.get(f"/v1/profiles/{pid}/shares", headers=account.headers).json()
    assert [s["id"] for s in listed] == [own["id"]]
    r = c.post("/v1/shares/accept", json={"code": own["code"]})
    assert r.status_code == 401


def test_a_profile_has_at_most_twenty_followers_and_invitations(account: Account) -> None:
    c = account.client
    child = c.post("/v1/profiles", json={"name": "Popular"}, headers=account.headers).json()
    follow(account, child["id"], ["readings"])
    made = [invite(account, child["id"], ["alerts"]) for _ in range(19)]
    r = c.post(
        f"/v1/profiles/{child['id']}/shares",
        json={"email": "one-too-many@example.com", "scopes": ["readings"]},
        headers=account.headers,
    )
    assert r.status_code == 409 and "20 followers" in r.json()["detail"]
    # withdrawing one frees a place
    r = c.delete(f"/v1/profiles/{child['id']}/shares/{made[0]['id']}", headers=account.headers)
    assert r.status_code == 200
    invite(account, child["id"], ["alerts"])
    assert len(c.get(f"/v1/profiles/{child['id']}/shares", headers=account.headers).json()) == 20
