"""Security headers on every HTTP response, as one pure ASGI middleware.

Pure ASGI (not ``BaseHTTPMiddleware``) because the readings upload is the hot path: this adds
a few precomputed header pairs to the response start message and does nothing else.

- ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer`` everywhere (a
  report link's token is in its URL and must not leak through a Referer).
- A Content-Security-Policy for the same-origin single-page app served at ``/``: scripts,
  styles, connections and images from this origin only, no framing.
- ``Cache-Control: no-store`` on the API (``/v1/``) and the interop sites: every answer there
  is about an account or its health data, and no browser, proxy or shared computer may keep
  a copy. It replaces whatever a route set (the SSE stream's ``no-cache``).
- ``Strict-Transport-Security`` only when the request arrived over TLS (``https``, as
  uvicorn saw it or a trusted proxy said): over plain HTTP it would be ignored, and on a
  local stack it would pin ``localhost`` to HTTPS in the browser.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
    "base-uri 'self'; form-action 'self'"
)
HSTS = "max-age=31536000; includeSubDomains"
PRIVATE_PREFIXES = ("/v1/", "/ns/", "/fhir/")

_ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"content-security-policy", CSP.encode()),
]
_TLS = [(b"strict-transport-security", HSTS.encode())]
_NO_STORE = [(b"cache-control", b"no-store")]


class SecurityHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        extra = list(_ALWAYS)
        if scope.get("scheme") == "https":
            extra += _TLS
        if scope["path"].startswith(PRIVATE_PREFIXES):
            extra += _NO_STORE
        names = frozenset(name for name, _ in extra)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [
                    (name, value)
                    for name, value in message.get("headers", [])
                    if name.lower() not in names
                ]
                message = {**message, "headers": kept + extra}
            await send(message)

        await self.app(scope, receive, send_with_headers)
