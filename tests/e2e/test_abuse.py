"""Abuse resistance over HTTP: password rules, login lockout, no account enumeration,
password reset by an emailed one-time token (through a real local SMTP server)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from tests.helpers import sign_up
from tests.mail import body_of, reset_token


def _signup(client, email: str, password: str = "a long enough passphrase"):
    return client.post("/v1/auth/signup", json={"email": email, "password": password, "name": "X"})


def _login(client, email: str, password: str):
    return client.post("/v1/auth/token", data={"username": email, "password": password})


def test_common_passwords_are_refused_case_insensitively(client) -> None:
    for password in ("BasketBall", "password1234", "aaaaaaaaaaaa"):
        r = _signup(client, f"u-{uuid.uuid4().hex[:8]}@example.com", password)
        assert r.status_code == 422, (password, r.text)
        assert r.json()["detail"][0]["loc"] == ["body", "password"]
    short = _signup(client, f"u-{uuid.uuid4().hex[:8]}@example.com", "short")
    assert short.status_code == 422 and short.json()["detail"][0]["loc"] == ["body", "password"]


def test_signup_does_not_reveal_an_existing_email(client, smtp) -> None:
    existing = sign_up(client)
    fresh = _signup(client, f"new-{uuid.uuid4().hex[:8]}@example.com")
    again = _signup(client, existing.email.upper(), "another long passphrase")
    assert (again.status_code, again.json()) == (fresh.status_code, fresh.json())
    assert again.status_code == 202
    # The owner of the address hears about it; their password is unchanged.
    (notice,) = smtp.inbox.wait_for(existing.email)
    assert notice["To"] == existing.email
    assert "already" in body_of(notice)
    assert _login(client, existing.email, existing.password).status_code == 200
    assert _login(client, existing.email, "another long passphrase").status_code == 401


def test_twenty_wrong_passwords_lock_the_account_alike_for_unknown_emails(client) -> None:
    account = sign_up(client)
    unknown = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    answers = {}
    for email in (account.email, unknown):
        seen = [_login(client, email, f"wrong password {i}") for i in range(20)]
        assert [r.status_code for r in seen[:19]] == [401] * 19
        assert seen[19].status_code == 429
        locked = _login(client, email, account.password)  # even the right password
        assert locked.status_code == 429
        assert 800 < int(locked.headers["Retry-After"]) <= 900
        answers[email] = [(r.status_code, r.json()) for r in (*seen, locked)]
    assert answers[account.email] == answers[unknown]
    # Another account from the same address is not affected.
    other = sign_up(client)
    assert _login(client, other.email, other.password).status_code == 200


def test_password_reset_by_emailed_one_time_token(client, smtp) -> None:
    account = sign_up(client)
    login = _login(client, account.email, account.password).json()
    asked = client.post("/v1/auth/password-reset", json={"email": account.email})
    nobody = client.post("/v1/auth/password-reset", json={"email": "nobody-x@example.com"})
    assert asked.status_code == nobody.status_code == 202
    assert asked.json() == nobody.json()
    token = reset_token(smtp.inbox.wait_for(account.email)[0])

    weak = client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": "qwertyuiop"}
    )
    assert weak.status_code == 422 and weak.json()["detail"][0]["loc"] == ["body", "new_password"]
    new = "my brand new passphrase"
    done = client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": new}
    )
    assert done.status_code == 200, done.text
    # Signed out everywhere; the old password is gone, the new one works; the token is spent.
    old_refresh = client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": login["refresh_token"]},
    )
    assert old_refresh.status_code == 401
    assert _login(client, account.email, account.password).status_code == 401
    assert _login(client, account.email, new).status_code == 200
    again = client.post(
        "/v1/auth/password-reset/confirm", json={"token": token, "new_password": "yet another one!"}
    )
    assert again.status_code == 422 and "token" in again.json()["detail"]


def test_an_expired_reset_token_is_refused(client, db) -> None:
    account = sign_up(client)
    token = secrets.token_urlsafe(32)
    db.execute(
        "INSERT INTO password_resets (token_hash, user_id, expires_at)"
        " SELECT %s, id, now() - interval '1 second' FROM users WHERE email = %s",
        (hashlib.sha256(token.encode()).digest(), account.email),
    )
    r = client.post(
        "/v1/auth/password-reset/confirm",
        json={"token": token, "new_password": "my brand new passphrase"},
    )
    assert r.status_code == 422
    assert _login(client, account.email, account.password).status_code == 200


def test_a_nul_character_in_the_name_is_a_422(client) -> None:
    r = client.post(
        "/v1/auth/signup",
        json={"email": "nul@example.com", "password": "a long enough passphrase", "name": "a\x00"},
    )
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "name"]


async def test_the_simulator_logs_in_when_the_account_exists(stack) -> None:
    """sensor_ingest's ensure_account: signup answers 202 whether or not the email exists."""
    import httpx

    from sensor_ingest.simulate.client import ensure_account

    email = f"sim-{uuid.uuid4().hex[:8]}@example.com"
    async with httpx.AsyncClient(base_url=stack.url, timeout=60) as client:
        for _ in range(2):
            session = await ensure_account(client, email, "simulated passphrase", "Sim")
            r = await session.request("GET", "/v1/devices")
            assert r.status_code == 200 and r.json() == []


def test_a_hash_with_older_argon2_parameters_is_upgraded_at_login(stack, client, db) -> None:
    from argon2 import PasswordHasher

    from api.passwords import PROFILES

    account = sign_up(client)
    current = PasswordHasher.from_parameters(PROFILES[stack.settings.password_hashing])
    older = PasswordHasher(time_cost=2, memory_cost=8 * 1024, parallelism=1)
    old = older.hash(account.password)
    assert current.check_needs_rehash(old)
    db.execute("UPDATE users SET password_hash = %s WHERE email = %s", (old, account.email))
    assert _login(client, account.email, account.password).status_code == 200
    (stored,) = db.execute(
        "SELECT password_hash FROM users WHERE email = %s", (account.email,)
    ).fetchone()
    assert stored != old and not current.check_needs_rehash(stored)
    assert current.verify(stored, account.password)
    # A current hash is left alone; the password still works.
    assert _login(client, account.email, account.password).status_code == 200
    assert db.execute(
        "SELECT password_hash FROM users WHERE email = %s", (account.email,)
    ).fetchone() == (stored,)
