"""Finding 7: registering someone else's push token must not move it to you silently.

The rule: a token held by another account moves only once that account is signed out
everywhere (or disabled); while its holder can still receive alerts on it, 409.
"""

from __future__ import annotations

import uuid

from tests.helpers import Account, sign_up

TOKEN_URL = "/v1/push-tokens"


def register(person: Account, token: str, platform: str = "fcm"):
    return person.client.post(
        TOKEN_URL, json={"platform": platform, "token": token}, headers=person.headers
    )


def tokens_of(person: Account) -> list[str]:
    return [t["token"] for t in person.client.get(TOKEN_URL, headers=person.headers).json()]


def test_another_users_token_is_refused_while_its_holder_is_signed_in(account: Account) -> None:
    phone = f"victim-phone-{uuid.uuid4().hex}"
    assert register(account, phone).status_code == 201
    attacker = sign_up(account.client)
    r = register(attacker, phone)
    assert r.status_code == 409, r.text
    assert account.email not in r.text
    assert tokens_of(account) == [phone] and tokens_of(attacker) == []
    assert register(account, phone).status_code == 201  # the holder again: no change
    assert tokens_of(account) == [phone]
    assert register(attacker, phone, platform="apns").status_code == 201  # another service


def test_a_phone_handed_on_after_sign_out_registers_for_its_new_user(account: Account) -> None:
    phone = f"family-phone-{uuid.uuid4().hex}"
    assert register(account, phone).status_code == 201
    new_user = sign_up(account.client)
    assert register(new_user, phone).status_code == 409
    out = account.client.post("/v1/auth/logout-all", headers=account.headers)
    assert out.status_code == 200 and out.json()["revoked"] >= 1
    assert register(new_user, phone).status_code == 201
    assert tokens_of(new_user) == [phone]


def test_a_disabled_holder_does_not_keep_a_token(account: Account, db) -> None:
    phone = f"old-phone-{uuid.uuid4().hex}"
    assert register(account, phone).status_code == 201
    new_user = sign_up(account.client)
    db.execute("UPDATE users SET disabled_at = now() WHERE email = %s", (account.email,))
    assert register(new_user, phone).status_code == 201
    (holder,) = db.execute(
        "SELECT u.email FROM push_tokens t JOIN users u ON u.id = t.user_id WHERE t.token = %s",
        (phone,),
    ).fetchone()
    assert holder == new_user.email
