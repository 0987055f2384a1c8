"""Finding 11c: security headers on every response, ``Cache-Control: no-store`` on health
data, HSTS only over TLS."""

from __future__ import annotations

import httpx
import pytest

from api.app import create_app
from api.config import ApiConfig
from api.security_headers import CSP
from tests.helpers import Account, self_profile

WEB_APP_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)


def assert_always(r: httpx.Response) -> None:
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert r.headers["content-security-policy"] == WEB_APP_CSP


def test_the_policy_is_the_one_the_web_app_needs() -> None:
    assert CSP == WEB_APP_CSP


def test_health_data_and_errors_are_never_cached(account: Account, client) -> None:
    profile = self_profile(account)
    for r in (
        client.get(f"/v1/profiles/{profile}", headers=account.headers),
        client.get(f"/v1/profiles/{profile}/stats", headers=account.headers),
        client.get(f"/v1/profiles/{profile}"),  # 401
        client.post("/v1/devices", json={"kind": "x"}, headers=account.headers),  # 422
    ):
        assert r.headers["cache-control"] == "no-store", r.request.url
        assert_always(r)
        assert "strict-transport-security" not in r.headers  # plain HTTP


def test_the_live_stream_is_not_cached_either(account: Account, client) -> None:
    with client.stream("GET", "/v1/stream/sse", headers=account.headers) as r:
        assert r.status_code == 200
        assert r.headers.get_list("cache-control") == ["no-store"]
        assert_always(r)


def test_public_documents_get_the_headers_without_no_store(client) -> None:
    r = client.get("/.well-known/jwks.json")
    assert r.status_code == 200
    assert_always(r)
    assert r.headers.get("cache-control") != "no-store"


@pytest.mark.parametrize(("scheme", "hsts"), [("https", True), ("http", False)])
async def test_hsts_only_when_the_request_came_over_tls(scheme: str, hsts: bool) -> None:
    app = create_app(ApiConfig(database_url="postgresql://unused"), connect=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=f"{scheme}://vigil") as c:
        r = await c.get("/openapi.json")
    assert r.status_code == 200
    assert_always(r)
    assert ("strict-transport-security" in r.headers) is hsts
    if hsts:
        assert r.headers["strict-transport-security"].startswith("max-age=31536000")
