"""Single sign-on, end to end: the stack signs in through a real local OpenID Connect
provider (oidc-provider-mock, nonce required) as a browser would: start at Vigil, authorize
at the provider, come back to Vigil's callback and get Vigil's own tokens."""

from __future__ import annotations

import base64
import hashlib
import uuid
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import psycopg

from api.tokens import hash_secret

PROVIDER = "corp"


def subject_with(oidc_provider: str, **claims: object) -> str:
    """A provider account with these claims; its subject."""
    sub = f"sub-{uuid.uuid4().hex[:12]}"
    r = httpx.put(f"{oidc_provider}/users/{sub}", json=claims)
    assert r.status_code == 204, r.text
    return sub


def start(client: httpx.Client) -> str:
    r = client.get(f"/v1/auth/sso/{PROVIDER}/login")
    assert r.status_code == 200, r.text
    return r.json()["authorization_url"]


def authorize(authorization_url: str, sub: str) -> str:
    """The user picks ``sub`` at the provider; the callback URL the provider redirects to."""
    r = httpx.post(authorization_url, data={"sub": sub})
    assert r.status_code == 302, r.text
    return r.headers["location"]


def sign_in(client: httpx.Client, oidc_provider: str, **claims: object) -> httpx.Response:
    sub = subject_with(oidc_provider, **claims)
    return client.get(authorize(start(client), sub))


def user_of(tokens: dict) -> str:
    return jwt.decode(tokens["access_token"], options={"verify_signature": False})["sub"]


def test_login_uses_pkce_s256_a_nonce_and_a_one_time_state(
    client: httpx.Client, stack, db: psycopg.Connection
) -> None:
    query = parse_qs(urlsplit(start(client)).query)
    assert query["response_type"] == ["code"] and query["client_id"] == ["vigil-test"]
    assert query["redirect_uri"] == [f"{stack.url}/v1/auth/sso/{PROVIDER}/callback"]
    assert query["code_challenge_method"] == ["S256"]
    assert "openid" in query["scope"][0].split() and query["nonce"][0]
    verifier, nonce = db.execute(
        "SELECT code_verifier, nonce FROM sso_logins WHERE state_hash = %s",
        (hash_secret(query["state"][0]),),
    ).fetchone()
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=")
    assert query["code_challenge"] == [challenge.decode()]
    assert query["nonce"] == [nonce]


def test_a_new_person_signs_in_and_gets_vigil_tokens(
    client: httpx.Client, oidc_provider: str
) -> None:
    email = f"ada-{uuid.uuid4().hex[:8]}@corp.example"
    sub = subject_with(oidc_provider, email=email, email_verified=True, name="Ada")
    back = authorize(start(client), sub)
    r = client.get(back)
    assert r.status_code == 200, r.text
    tokens = r.json()
    me = client.get("/v1/profiles", headers={"Authorization": f"Bearer {tokens['access_token']}"})
    assert me.status_code == 200 and [p["kind"] for p in me.json()] == ["self"]
    refreshed = client.post(
        "/v1/auth/token",
        data={"grant_type": "refresh_token", "refresh_token": tokens["refresh_token"]},
    )
    assert refreshed.status_code == 200 and user_of(refreshed.json()) == user_of(tokens)
    assert client.get(back).status_code == 401  # the state works once
    again = client.get(authorize(start(client), sub))  # the identity is linked now
    assert again.status_code == 200 and user_of(again.json()) == user_of(tokens)
    # No password was set: the password login refuses whatever is tried.
    login = client.post("/v1/auth/token", data={"username": email, "password": "!sso"})
    assert login.status_code == 401


def test_an_existing_account_is_linked_by_verified_email(
    client: httpx.Client, oidc_provider: str
) -> None:
    email = f"grace-{uuid.uuid4().hex[:8]}@corp.example"
    password = "a long enough passphrase"
    body = {"email": email, "password": password, "name": "Grace"}
    assert client.post("/v1/auth/signup", json=body).status_code == 202
    by_password = client.post("/v1/auth/token", data={"username": email, "password": password})
    r = sign_in(client, oidc_provider, email=email.upper(), email_verified=True)
    assert r.status_code == 200, r.text
    assert user_of(r.json()) == user_of(by_password.json())


def test_an_unverified_email_or_another_domain_is_refused(
    client: httpx.Client, oidc_provider: str, db: psycopg.Connection
) -> None:
    unverified = f"eve-{uuid.uuid4().hex[:8]}@corp.example"
    r = sign_in(client, oidc_provider, email=unverified, email_verified=False)
    assert r.status_code == 403 and "verified" in r.json()["detail"]
    r = sign_in(client, oidc_provider, email="mallory@elsewhere.example", email_verified=True)
    assert r.status_code == 403 and "elsewhere.example" in r.json()["detail"]
    made = db.execute(
        "SELECT count(*) FROM users WHERE email IN (%s, 'mallory@elsewhere.example')",
        (unverified,),
    ).fetchone()[0]
    assert made == 0


def test_an_id_token_for_another_sign_in_is_refused_by_its_nonce(
    client: httpx.Client, oidc_provider: str
) -> None:
    sub = subject_with(oidc_provider, email="kim@corp.example", email_verified=True)
    first, second = start(client), start(client)
    back = urlsplit(authorize(first, sub))
    code = parse_qs(back.query)["code"][0]
    other_state = parse_qs(urlsplit(second).query)["state"][0]
    r = client.get(back.path, params={"code": code, "state": other_state})
    assert r.status_code == 401 and "nonce" in r.json()["detail"]


def test_unknown_provider_state_or_a_refusal(client: httpx.Client) -> None:
    assert client.get("/v1/auth/sso/nobody/login").status_code == 404
    callback = f"/v1/auth/sso/{PROVIDER}/callback"
    assert client.get(callback, params={"code": "x", "state": "made-up"}).status_code == 401
    state = parse_qs(urlsplit(start(client)).query)["state"][0]
    r = client.get(callback, params={"error": "access_denied", "state": state})
    assert r.status_code == 401 and "access_denied" in r.json()["detail"]
    assert client.get(callback).status_code == 422  # state is required
