"""Tokens over HTTP: forged and stale tokens are refused, refresh tokens rotate and reuse
revokes the login, logout ends logins, the JWKS verifies tokens, key rotation logs nobody out.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid

import httpx
import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.helpers import Account, sign_up


def login(account: Account) -> dict:
    r = account.client.post(
        "/v1/auth/token", data={"username": account.email, "password": account.password}
    )
    assert r.status_code == 200, r.text
    return r.json()


def refresh(client: httpx.Client, token: str) -> httpx.Response:
    return client.post(
        "/v1/auth/token", data={"grant_type": "refresh_token", "refresh_token": token}
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def signing_key(db) -> tuple[str, Ed25519PrivateKey]:
    kid, pem = db.execute(
        "SELECT kid, private_pem FROM signing_keys WHERE retired_at IS NULL"
        " ORDER BY created_at DESC LIMIT 1"
    ).fetchone()
    key = serialization.load_pem_private_key(pem.encode(), password=None)
    assert isinstance(key, Ed25519PrivateKey)
    return kid, key


def test_forged_expired_tampered_and_misaddressed_tokens_are_refused(
    account: Account, db, stack
) -> None:
    c = account.client
    me = jwt.decode(account.headers["Authorization"][7:], options={"verify_signature": False})
    kid, key = signing_key(db)
    now = int(time.time())
    good = {"iss": stack.url, "aud": "vigil", "sub": me["sub"], "iat": now, "exp": now + 300}

    def sign(claims: dict, with_key=key, header_kid: str = kid) -> str:
        return jwt.encode(claims, with_key, algorithm="EdDSA", headers={"kid": header_kid})

    # control: a token made exactly as Vigil makes them is accepted
    assert c.get("/v1/profiles", headers=bearer(sign(good))).status_code == 200

    stranger_key = Ed25519PrivateKey.generate()
    refused = {
        "another key, Vigil's kid": sign(good, stranger_key),
        "another key, unknown kid": sign(good, stranger_key, uuid.uuid4().hex[:16]),
        "expired": sign({**good, "iat": now - 3600, "exp": now - 1800}),
        "wrong audience": sign({**good, "aud": "someone-else"}),
        "wrong issuer": sign({**good, "iss": "https://evil.example"}),
        "no expiry": sign({k: v for k, v in good.items() if k != "exp"}),
        "not a jwt": "not-a-token",
    }
    header, payload, signature = sign(good).split(".")
    other = sign({**good, "sub": str(uuid.uuid4())}).split(".")[1]
    refused["tampered payload"] = f"{header}.{other}.{signature}"
    refused["tampered signature"] = f"{header}.{payload}.{signature[:-4]}AAAA"
    refused["alg none"] = jwt.encode(good, None, algorithm="none")
    for what, token in refused.items():
        r = c.get("/v1/profiles", headers=bearer(token))
        assert r.status_code == 401, f"{what}: {r.status_code} {r.text}"
        assert r.headers["www-authenticate"] == "Bearer"


def test_refresh_rotates_and_reuse_revokes_the_login(account: Account) -> None:
    c = account.client
    first = login(account)
    second = refresh(c, first["refresh_token"])
    assert second.status_code == 200, second.text
    second = second.json()
    assert second["refresh_token"] != first["refresh_token"]
    assert c.get("/v1/profiles", headers=bearer(second["access_token"])).status_code == 200

    reused = refresh(c, first["refresh_token"])  # a stolen copy of the used token
    assert reused.status_code == 401 and "reused" in reused.json()["detail"]
    # the whole login is revoked: the legitimate newest token no longer refreshes
    assert refresh(c, second["refresh_token"]).status_code == 401
    # other logins of the same user are untouched
    other = login(account)
    assert refresh(c, other["refresh_token"]).status_code == 200


def test_logout_ends_one_login_and_logout_all_ends_every_login(account: Account) -> None:
    c = account.client
    phone, laptop, tablet = login(account), login(account), login(account)
    r = c.post("/v1/auth/logout", json={"refresh_token": phone["refresh_token"]})
    assert r.status_code == 200 and r.json()["revoked"] == 1
    assert refresh(c, phone["refresh_token"]).status_code == 401
    laptop = refresh(c, laptop["refresh_token"])
    assert laptop.status_code == 200  # the other logins go on
    laptop = laptop.json()
    r = c.post("/v1/auth/logout", json={"refresh_token": "never-issued"})
    assert r.status_code == 200 and r.json()["revoked"] == 0

    assert c.post("/v1/auth/logout-all").status_code == 401
    r = c.post("/v1/auth/logout-all", headers=bearer(tablet["access_token"]))
    assert r.status_code == 200 and r.json()["revoked"] >= 2
    assert refresh(c, laptop["refresh_token"]).status_code == 401
    assert refresh(c, tablet["refresh_token"]).status_code == 401
    # someone else's logins are untouched
    other = sign_up(c)
    assert refresh(c, login(other)["refresh_token"]).status_code == 200


def test_the_jwks_verifies_tokens_like_another_service_would(account: Account, stack) -> None:
    c = account.client
    discovery = c.get("/.well-known/openid-configuration").json()
    assert discovery["issuer"] == stack.url
    assert discovery["id_token_signing_alg_values_supported"] == ["EdDSA"]
    assert discovery["token_endpoint"] == f"{stack.url}/v1/auth/token"
    assert "refresh_token" in discovery["grant_types_supported"]
    keys = c.get(discovery["jwks_uri"]).json()["keys"]
    assert keys and all(k["use"] == "sig" and k["alg"] == "EdDSA" for k in keys)
    assert not any("d" in k for k in keys)  # public halves only

    token = account.headers["Authorization"][7:]
    signing = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token,
        signing.key,
        algorithms=discovery["id_token_signing_alg_values_supported"],
        audience=discovery["audience"],
        issuer=discovery["issuer"],
    )
    assert claims["sub"] and claims["exp"] - claims["iat"] == 900


def test_key_rotation_logs_nobody_out(account: Account, database_url: str, stack) -> None:
    c = account.client
    old_session = login(account)
    old_kid = jwt.get_unverified_header(old_session["access_token"])["kid"]
    env = {**os.environ, "VIGIL_DATABASE_URL": database_url}
    done = subprocess.run(
        [sys.executable, "-m", "cluster.cli", "keys", "rotate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert old_kid in done.stdout  # named as retired

    assert c.get("/v1/profiles", headers=bearer(old_session["access_token"])).status_code == 200
    new_kids = {k["kid"] for k in c.get("/.well-known/jwks.json").json()["keys"]} - {old_kid}
    assert len(new_kids) >= 1, (done.stdout, c.get("/.well-known/jwks.json").json())
    assert old_kid in {k["kid"] for k in c.get("/.well-known/jwks.json").json()["keys"]}
    # the replica signs with the new key once it reloads; refreshing keeps the login going
    renewed = refresh(c, old_session["refresh_token"])
    assert renewed.status_code == 200, renewed.text
    assert c.get("/v1/profiles", headers=bearer(renewed.json()["access_token"])).status_code == 200
