"""The FastAPI application factory."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from actors import heap
from actors.router import ShardRouter
from api import passwords
from api.body_limit import BodyLimit
from api.config import ApiConfig
from api.errors import install_error_handlers
from api.fast_reads import FastReads
from api.fast_uploads import FastUploads
from api.read_listener import ReadListener
from api.read_listener import enabled as read_listeners_on
from api.request_id import RequestIdMiddleware, install_log_field
from api.routes import (
    admin,
    alert_settings,
    alerts,
    audit,
    auth,
    charts,
    devices,
    events,
    health,
    history,
    notifications,
    password_reset,
    privacy,
    profiles,
    readings,
    readings_stream,
    reports,
    sessions,
    sharing,
    sso,
    stats,
    stream,
    upload_tokens,
    web,
    wellknown,
)
from api.routes.fhir import routes as fhir_routes
from api.routes.nightscout import manage as nightscout_manage
from api.routes.nightscout import site as nightscout_site
from api.routes.upload_tokens import UploadChecks
from api.security_headers import SecurityHeaders
from api.supervision import keep_actors_running, sample_gauges
from api.tokens import KeyStore
from storage.batches import Batcher, open_batch_pool
from storage.pools import open_pool
from storage.readings import audited_reads
from storage.shard_layouts import active_layout

DESCRIPTION = """\
Vigil stores and follows body-worn sensor readings (continuous glucose monitors,
temperature patches). Glucose is in mg/dL and temperature in °C; timestamps are ISO 8601
with a UTC offset. Obtain a bearer token at `/v1/auth/token` and send it as
`Authorization: Bearer <token>`. Errors have a `detail` naming what is wrong.

Two WebSockets complement the routes below (OpenAPI cannot describe them):
`/v1/stream` sends each new reading and alert event of the profiles a client may see
(`/v1/stream/sse` is the same as Server-Sent Events); `/v1/devices/{device_id}/readings/stream`
takes a device's batches `{"seq": 1, "readings": [...]}` over one connection and answers each
`{"type": "ack", "seq": 1, "accepted": 1, "duplicates": 0}` once committed, or
`{"type": "error", "seq": 1, "status": 422, "detail": [...]}`. Both authenticate with
`?token=`, the `Authorization` header or a first message `{"type": "auth", "token": "..."}`;
every message and close code is in the repository's `docs/websockets.md`.
"""


def create_app(
    config: ApiConfig,
    *,
    connect: bool = True,
    serve_sets_request_id: bool = False,
    fast_lanes: bool = True,
    read_listener: bool = False,
) -> FastAPI:
    """Build the app. ``connect=False`` builds it without touching the database or Ray
    (to generate the OpenAPI document); ``serve_sets_request_id``: Ray Serve in front puts
    the ``X-Request-ID`` response header (see ``api.request_id``); ``fast_lanes=False``
    leaves the polled reads and the readings upload to FastAPI's routing too
    (``api.fast_reads``, ``api.fast_uploads``; tests compare); ``read_listener``: a Serve
    replica also answers the polled reads on a listener of its own, when the ingress routes
    them there (``api.read_listener``)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if not connect:
            yield
            return
        install_log_field()
        pool = await open_pool(
            config.database_url, min_size=config.db_pool_min, max_size=config.db_pool_max
        )
        keys = KeyStore(pool, config.issuer, config.access_token_ttl_s)
        await keys.load()
        app.state.pool = pool
        app.state.keys = keys
        batch_pool = await open_batch_pool(config.database_url)
        app.state.reads = Batcher(batch_pool, audited_reads)
        app.state.upload_checks = UploadChecks.on(batch_pool)
        app.state.router = ShardRouter(
            config.shard_count,
            config.namespace,
            config.shard_config_for(config.database_url, config.shard_count),
            hold_max_s=config.router_hold_ms / 1000,
        )
        await app.state.router.follow_layout(lambda: active_layout(pool))
        app.state.config = config
        passwords.configure(config.rate_limits.password_hashing_threads, config.password_hashing)
        supervisor = asyncio.get_running_loop().create_task(
            keep_actors_running(config, app.state.router)
        )
        gauges = asyncio.get_running_loop().create_task(sample_gauges(pool))
        reads = ReadListener(app) if read_listener and read_listeners_on() else None
        if reads is not None:
            reads.start()
        heap.settle()  # in a Serve replica: the app and its pools are built
        try:
            yield
        finally:
            if reads is not None:  # first: its requests in flight still need the pools
                await reads.stop()
            for task in (supervisor, gauges):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            await batch_pool.close()
            await pool.close()

    app = FastAPI(
        title="Vigil",
        version="0.1.0",
        summary="Backend for body-worn health sensors",
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs and /redoc come from api.routes.web, with their assets served by Vigil itself.
        docs_url=None,
        redoc_url=None,
        # Vigil configures no OpenTelemetry provider; FastAPI would look for one in the
        # environment on every request (2 % of a polled read's CPU in a replica).
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    install_error_handlers(app)
    if fast_lanes:  # the innermost: inside every other middleware
        app.add_middleware(FastUploads)
        app.add_middleware(FastReads)
    app.add_middleware(BodyLimit)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestIdMiddleware, respond=not serve_sets_request_id)
    for module in (
        health,
        auth,
        profiles,
        devices,
        upload_tokens,
        readings,
        readings_stream,
        events,
        charts,
        stats,
        reports,
        sharing,
        sessions,
        wellknown,
        password_reset,
        audit,
        admin,
        privacy,
        alert_settings,
        alerts,
        notifications,
        stream,
        nightscout_manage,
        nightscout_site,
        history,
        fhir_routes,
        sso,
    ):
        app.include_router(module.router)
    app.include_router(web.router)  # last: its catch-all serves the web app
    return app
