"""Vigil serves the built web app at / and the API docs from its own assets (no CDN, no
inline script), with long cache headers for hashed assets only."""

from __future__ import annotations

import re

import httpx

from api.routes.web import DEFAULT_DIST


def test_the_app_is_served_at_the_root_with_cache_headers(client: httpx.Client) -> None:
    assert (DEFAULT_DIST / "index.html").is_file(), "web/ is not built: run `make web`"
    page = client.get("/")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-cache"
    assert '<div id="root">' in page.text
    assert "script-src 'self'" in page.text  # the CSP <meta>
    assets = re.findall(r'(?:src|href)="(/assets/[^"]+)"', page.text)
    assert assets, page.text
    for path in assets:
        r = client.get(path)
        assert r.status_code == 200, path
        assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
        assert r.headers["content-encoding"] == "gzip"  # httpx asks for it, and unpacks it
        plain = client.get(path, headers={"Accept-Encoding": "identity"})
        assert "content-encoding" not in plain.headers and plain.content == r.content
    # Client-side routes answer the app's page; the API keeps its JSON 404s.
    for route in ("/alerts", "/sharing", "/admin"):
        r = client.get(route)
        assert r.status_code == 200 and r.text == page.text, route
    for missing in ("/v1/no-such-route", "/assets/missing-abc123.js", "/favicon.ico"):
        r = client.get(missing)
        assert r.status_code == 404 and r.headers["content-type"] == "application/json", missing
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/openapi.json").json()["info"]["title"] == "Vigil"
    assert "[project]" not in client.get("/%2e%2e/pyproject.toml").text


def test_api_docs_use_vigils_own_scripts(client: httpx.Client) -> None:
    for page_path, needs in (
        ("/docs", ["/api-docs/swagger-ui-bundle.js", "/api-docs/swagger-init.js"]),
        ("/redoc", ["/api-docs/redoc.standalone.js"]),
    ):
        page = client.get(page_path)
        assert page.status_code == 200
        scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
        assert scripts, page_path
        for attrs, body in scripts:
            assert body.strip() == "", f"inline script in {page_path}"
            src = re.search(r'src="([^"]+)"', attrs).group(1)
            assert src in needs, src
            r = client.get(src)
            assert r.status_code == 200 and r.content.strip(), src
            assert "javascript" in r.headers["content-type"], src
