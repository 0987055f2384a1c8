"""The web app and the API docs, served by Vigil itself.

``web/`` builds (``npm run build``) into ``web/dist``: the dashboard and admin console, and
under ``api-docs/`` the Swagger UI and ReDoc bundles copied from npm. Serving them from here
keeps the app on the API's own origin (no CORS, one ingress) and makes ``/docs`` and
``/redoc`` work on a network without internet. No page carries an inline script, so a
``script-src 'self'`` Content-Security-Policy holds everywhere.

Hashed files under ``/assets/`` never change and are cached for a year; ``index.html`` is
revalidated on every load so a new build is picked up at once. Any other GET path that is
not the API's answers ``index.html`` (the app's client-side routes).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response

router = APIRouter(include_in_schema=False)

DEFAULT_DIST = Path(__file__).resolve().parents[2] / "web" / "dist"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# Paths the app never owns: an unknown API path is a JSON 404, not the app's page.
API_PREFIXES = ("v1/", "v1", ".well-known/", "openapi.json", "healthz", "readyz")

# The same policy as the app's page (web/index.html); a header from a proxy may add to it.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "connect-src 'self'; img-src 'self' data: blob:"
)
CSP_META = f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'

DOCS_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil API</title>{CSP_META}
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api-docs/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api-docs/swagger-ui-bundle.js"></script>
<script src="/api-docs/swagger-init.js"></script></body></html>
"""

# No search box: its index runs in a blob: worker, which `script-src 'self'` refuses.
REDOC_PAGE = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Vigil API</title>{CSP_META}
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body><redoc spec-url="/openapi.json" disable-search="true"></redoc>
<script src="/api-docs/redoc.standalone.js"></script></body></html>
"""


def dist_dir(request: Request) -> Path:
    config = getattr(request.app.state, "config", None)
    configured = getattr(config, "web_dir", None)
    return Path(configured) if configured else DEFAULT_DIST


@router.get("/docs")
async def swagger_docs() -> HTMLResponse:
    return HTMLResponse(DOCS_PAGE, headers={"Cache-Control": NO_CACHE})


@router.get("/redoc")
async def redoc_docs() -> HTMLResponse:
    return HTMLResponse(REDOC_PAGE, headers={"Cache-Control": NO_CACHE})


@router.get("/{path:path}")
async def web_app(path: str, request: Request) -> Response:
    """A built file, or the app's page for a client-side route."""
    if path.startswith(API_PREFIXES):
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    root = dist_dir(request).resolve()
    index = root / "index.html"
    if not index.is_file():
        return JSONResponse(
            {"detail": "the web app is not built: run `make web` (npm ci && npm run build)"},
            status_code=404,
        )
    target = (root / path).resolve()
    if path and target.is_relative_to(root) and target.is_file():
        return _file(target, request, IMMUTABLE if path.startswith("assets/") else NO_CACHE)
    if path.startswith(("assets/", "api-docs/")) or Path(path).suffix:
        return JSONResponse({"detail": "Not Found"}, status_code=404)
    return FileResponse(index, headers={"Cache-Control": NO_CACHE})


def _file(target: Path, request: Request, cache: str) -> FileResponse:
    """The file, or its pre-compressed ``.gz`` twin (built beside it) when gzip is accepted."""
    headers = {"Cache-Control": cache, "Vary": "Accept-Encoding"}
    packed = target.with_name(target.name + ".gz")
    if "gzip" in request.headers.get("accept-encoding", "") and packed.is_file():
        headers["Content-Encoding"] = "gzip"
        media = "text/css" if target.suffix == ".css" else "text/javascript"
        return FileResponse(packed, media_type=media, headers=headers)
    return FileResponse(target, headers=headers)
