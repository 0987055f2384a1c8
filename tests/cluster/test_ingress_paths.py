"""Which of the app's routes the ingress marks for Serve not to watch for a disconnect.

Serve then hands the route uvicorn's own ``receive``: nothing notices a client that leaves
unless the route reads its socket itself (the WebSockets) or runs to its end harmlessly
(uploads, polled reads). A route added under the pattern must be one of those, so the set
is pinned here."""

from __future__ import annotations

import re
import uuid

import pytest
from fastapi.routing import APIRoute, APIWebSocketRoute

from api.app import create_app
from api.config import ApiConfig
from cluster.ingress import (
    READ_PATHS,
    READS_BACKEND,
    UNWATCHED_PATHS,
    TemplateChanged,
    hardened_template,
)


def _routes() -> list[tuple[str, str]]:
    """(method, path with a made-up id) of every route; "WS" for a WebSocket."""
    app = create_app(ApiConfig(database_url="postgresql://unused"), connect=False)
    out = []
    for included in app.routes:
        if not hasattr(included, "original_router"):  # a plain Starlette route (/readyz)
            continue
        for route in included.original_router.routes:
            if isinstance(route, APIWebSocketRoute):
                methods = {"WS"}
            else:
                assert isinstance(route, APIRoute), route
                methods = route.methods
            full = included.include_context.prefix + route.path
            path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), full)
            out += [(m, path) for m in sorted(methods)]
    assert len(out) > 50  # every route was seen
    return out


def test_exactly_the_uploads_the_polled_reads_and_the_two_websockets_are_unwatched() -> None:
    unwatched = {
        (method, re.sub(r"[0-9a-f-]{36}", "{id}", path))
        for method, path in _routes()
        if re.search(UNWATCHED_PATHS, path)
    }
    assert unwatched == {
        ("GET", "/v1/devices/{id}/latest"),
        ("GET", "/v1/devices/{id}/readings"),
        ("POST", "/v1/devices/{id}/readings"),
        ("WS", "/v1/devices/{id}/readings/stream"),
        ("WS", "/v1/stream"),
    }


def test_the_pattern_is_anchored() -> None:
    device = uuid.uuid4()
    for path in (
        f"/v1/devices/{device}/readings/stream/x",
        f"/x/v1/devices/{device}/latest",
        "/v1/stream/sse",
        f"/v1/devices/{device}/x/readings",
    ):
        assert not re.search(UNWATCHED_PATHS, path), path


def test_the_rule_sets_the_header_for_the_pattern_only() -> None:
    from ray.serve._private import haproxy_templates

    shipped = haproxy_templates.HAPROXY_CONFIG_TEMPLATE
    if getattr(haproxy_templates, "VIGIL_HARDENED", False):  # this process hardened it
        hardened = shipped
    else:
        hardened = hardened_template(shipped, [], "127.0.0.1")
    rules = [line.strip() for line in hardened.splitlines() if "Disconnect-Disabled" in line]
    assert rules == [
        "http-request del-header X-Request-Disconnect-Disabled",
        "http-request set-header X-Request-Disconnect-Disabled ?1"
        f" if {{ path_reg {UNWATCHED_PATHS} }}",
    ]


def test_only_the_two_polled_reads_go_to_the_read_listeners() -> None:
    routed = {
        (method, re.sub(r"[0-9a-f-]{36}", "{id}", path))
        for method, path in _routes()
        if method == "GET" and re.search(READ_PATHS, path)
    }
    assert routed == {("GET", "/v1/devices/{id}/latest"), ("GET", "/v1/devices/{id}/readings")}
    assert not re.search(READ_PATHS, f"/v1/devices/{uuid.uuid4()}/readings/stream")


def test_the_read_routing_applies_to_rays_template_or_fails_loudly() -> None:
    from ray.serve._private import haproxy_templates

    # As shipped, also where this process hardened it (cluster.ingress.harden_haproxy).
    shipped = getattr(haproxy_templates, "VIGIL_SHIPPED", haproxy_templates.HAPROXY_CONFIG_TEMPLATE)
    hardened = hardened_template(shipped, [], "127.0.0.1", ("vigil", 64))
    routed = f"METH_GET vigil_read {{ nbsrv({READS_BACKEND}) ge 1 }}\n"
    rule = hardened.index(f"use_backend {READS_BACKEND} if {routed}")
    assert rule < hardened.index("use_backend {{ backend.name or 'unknown' }} if is_")
    # Exactly the reads routed there go unlogged (the listeners count them).
    assert hardened.count("set-log-level silent") == 1
    assert hardened.index(f"http-request set-log-level silent if {routed}") < rule
    assert "{{ server.port + 64 }} check" in hardened
    assert "item.backend.app_name == 'vigil'" in hardened
    with pytest.raises(TemplateChanged):
        hardened_template(shipped.replace("# Static routing", "# routing"), [], "x", ("v", 1))
