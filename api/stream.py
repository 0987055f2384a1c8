"""Live stream: each new reading and each alert event of the profiles a client may see.

``GET /v1/stream`` (WebSocket) and ``GET /v1/stream/sse`` (Server-Sent Events). Every API
replica keeps one PostgreSQL connection that LISTENs on ``vigil_live``: the shards NOTIFY
once per committed batch per device (PostgreSQL delivers a NOTIFY only when its transaction
commits), so any number of replicas see every reading without polling the database. A
share that is revoked (or loses scopes) NOTIFYs too; the replica re-checks that follower's
access and closes the stream when nothing it subscribed to remains readable. Alert events
follow each person's notification preferences (channel ``stream``, rules, quiet hours;
urgent passes), re-read when they change.

Messages (JSON): ``{"type": "reading", ...}``, ``{"type": "alert", ...}``,
``{"type": "subscribed", "profiles": [...]}``, ``{"type": "revoked", "profile_id": ...}``,
``{"type": "ping"}``, ``{"type": "error", "detail": ...}``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import asyncpg
from fastapi import APIRouter, Query, Request, WebSocket, WebSocketDisconnect
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from actors import metrics
from actors.notifier import stream_wants
from api.errors import error, responses
from api.tokens import InvalidToken
from storage import access, accounts, notifications
from storage.alerts import NOTIFY_CHANNEL, alert_fields, iso

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/stream", tags=["stream"])

PING_S = 20.0
QUEUE_MAX = 2000
AUTH_TIMEOUT_S = 10.0


class StreamReading(BaseModel):
    type: Literal["reading"] = "reading"
    profile_id: uuid.UUID
    device_id: uuid.UUID
    kind: str = Field(examples=["glucose"])
    ts: datetime
    value: float = Field(examples=[112.0])
    rate_per_min: float | None = Field(examples=[-1.4])
    direction: str | None = Field(examples=["FortyFiveDown"])
    prediction_20: float | None = Field(
        description="Predicted value in 20 minutes (glucose)", examples=[96.0]
    )


class StreamAlert(BaseModel):
    type: Literal["alert"] = "alert"
    event: Literal["fired", "repeated", "cleared", "escalated"] = Field(examples=["fired"])
    alert_id: uuid.UUID
    profile_id: uuid.UUID
    device_id: uuid.UUID
    rule: str = Field(examples=["urgent_low"])
    severity: str = Field(examples=["urgent"])
    value: float | None = Field(examples=[52.0])
    threshold: float = Field(examples=[55.0])
    reading_ts: datetime
    received_at: datetime
    fired_at: datetime


def reading_message(msg: dict) -> str | None:
    r = msg.get("r")
    if r is None:
        return None
    return json.dumps(
        {
            "type": "reading",
            "profile_id": msg["p"],
            "device_id": msg["d"],
            "kind": msg.get("k"),
            "ts": iso(r["ts"]),
            "value": r["v"],
            "rate_per_min": r.get("rate"),
            "direction": r.get("dir"),
            "prediction_20": r.get("pred20"),
        }
    )


def alert_messages(msg: dict) -> list[str]:
    return [
        json.dumps(
            {
                "type": "alert",
                "event": a["type"],
                "alert_id": a["id"],
                "profile_id": msg["p"],
                "device_id": msg["d"],
                **alert_fields(a),
            }
        )
        for a in msg.get("a", ())
    ]


@dataclass(eq=False)
class Subscriber:
    """One connected client: what it may see of each profile it subscribed to."""

    user_id: uuid.UUID
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    profiles: dict[uuid.UUID, tuple[bool, bool]] = field(default_factory=dict)  # readings, alerts
    prefs: dict[uuid.UUID, dict | None] = field(default_factory=dict)  # notification prefs
    closed: str | None = None  # why the server ends this stream

    def offer(self, item: str) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close("too slow: messages were not read in time")

    def close(self, reason: str) -> None:
        if self.closed is None:
            self.closed = reason
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)


class LiveHub:
    """The replica's LISTEN connection and its subscribers, by profile."""

    def __init__(self, database_url: str, pool: asyncpg.Pool) -> None:
        self._url = database_url
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._by_profile: dict[uuid.UUID, set[Subscriber]] = defaultdict(set)
        self._sent_log: list[tuple] = []  # alert events handed to streams, for the log
        self._flusher: asyncio.Task | None = None
        self.received = 0

    async def ensure_listening(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            self._conn = await asyncpg.connect(self._url)
            self._conn.add_termination_listener(self._on_lost)
            await self._conn.add_listener(NOTIFY_CHANNEL, self._on_notify)

    def _on_lost(self, conn: asyncpg.Connection) -> None:
        log.warning("live stream LISTEN connection lost; closing streams so clients reconnect")
        self._conn = None
        for subs in list(self._by_profile.values()):
            for sub in list(subs):
                sub.close("server connection to the database was lost; reconnect")

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        self.received += 1
        try:
            msg = json.loads(payload)
        except ValueError:
            return
        changed = msg.get("revoked") or msg.get("changed")  # a share, or someone's preferences
        if changed is not None:
            asyncio.get_running_loop().create_task(
                self._recheck(uuid.UUID(changed), uuid.UUID(msg["f"]))
            )
            return
        subs = self._by_profile.get(uuid.UUID(msg["p"]))
        if not subs:
            return
        profile = uuid.UUID(msg["p"])
        reading = reading_message(msg)
        alerts = alert_messages(msg) if "a" in msg else []
        for sub in list(subs):
            may_read, may_alert = sub.profiles.get(profile, (False, False))
            if reading is not None and may_read:
                sub.offer(reading)
            if may_alert and alerts:
                now = datetime.now(UTC)
                prefs = sub.prefs.get(profile)
                for a, raw in zip(alerts, msg["a"], strict=True):
                    if stream_wants(prefs, raw, raw["type"], now.timestamp()):
                        sub.offer(a)
                        self._sent_log.append((uuid.UUID(raw["id"]), raw["type"], sub.user_id, now))
        if self._sent_log and (self._flusher is None or self._flusher.done()):
            self._flusher = asyncio.get_running_loop().create_task(self._flush())

    async def _flush(self) -> None:
        """Record stream deliveries of alert events (alert_deliveries, channel 'stream')."""
        await asyncio.sleep(0.2)  # gather what else arrives meanwhile into one write
        rows, self._sent_log = self._sent_log, []
        try:
            await notifications.log_stream_deliveries(self._pool, rows)
        except Exception:
            log.warning("could not log %d stream deliveries", len(rows), exc_info=True)

    async def _recheck(self, profile_id: uuid.UUID, follower_id: uuid.UUID) -> None:
        for sub in list(self._by_profile.get(profile_id, ())):
            if sub.user_id != follower_id:
                continue
            grant = await access.profile_grant(self._pool, follower_id, profile_id)
            allowed = _allowed(grant)
            if allowed == (False, False):
                self.unsubscribe(sub, profile_id)
                sub.offer(json.dumps({"type": "revoked", "profile_id": str(profile_id)}))
                if not sub.profiles:
                    sub.close("access revoked")
            else:
                sub.profiles[profile_id] = allowed
                sub.prefs[profile_id] = await stream_prefs(self._pool, follower_id, profile_id)

    def subscribe(
        self,
        sub: Subscriber,
        profile_id: uuid.UUID,
        allowed: tuple[bool, bool],
        prefs: dict | None = None,
    ) -> None:
        sub.profiles[profile_id] = allowed
        sub.prefs[profile_id] = prefs
        self._by_profile[profile_id].add(sub)
        self._count_subscribers()

    def unsubscribe(self, sub: Subscriber, profile_id: uuid.UUID | None = None) -> None:
        for p in [profile_id] if profile_id is not None else list(sub.profiles):
            sub.profiles.pop(p, None)
            sub.prefs.pop(p, None)
            subs = self._by_profile.get(p)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    self._by_profile.pop(p, None)
        self._count_subscribers()

    def _count_subscribers(self) -> None:
        """Subscribers of this replica (subscribe/unsubscribe only: not per message)."""
        connected = {s for subs in self._by_profile.values() for s in subs}
        metrics.set_gauge("vigil_stream_subscribers", len(connected))


async def stream_prefs(
    pool: asyncpg.Pool, user_id: uuid.UUID, profile_id: uuid.UUID
) -> dict | None:
    """The person's notification preferences for the profile, as the stream filters by them
    (None: none saved, every alert event shows)."""
    row = await notifications.get_prefs(pool, user_id, profile_id)
    if row is None:
        return None
    quiet = row["quiet"]
    return {
        "rules": row["rules"],
        "channels": row["channels"],
        "quiet": json.loads(quiet) if isinstance(quiet, str) else quiet,
        "timezone": row["timezone"],
        "escalation_only": row["escalation_only"],
    }


def _allowed(grant: access.Grant | None) -> tuple[bool, bool]:
    if grant is None:
        return False, False
    return grant.allows("readings"), grant.allows("alerts")


async def hub_for(app: Any) -> LiveHub:
    hub = getattr(app.state, "live_hub", None)
    if hub is None:
        hub = app.state.live_hub = LiveHub(app.state.config.database_url, app.state.pool)
    await hub.ensure_listening()
    return hub


async def authenticate(app: Any, token: str | None) -> uuid.UUID:
    """The user id of a valid bearer token of an active account; raises PermissionError."""
    if not token:
        raise PermissionError("not authenticated: send a bearer token")
    try:
        user_id = (await app.state.keys.verify(token)).user_id
    except InvalidToken as exc:
        raise PermissionError(f"invalid token: {exc}") from exc
    if await accounts.active_user(app.state.pool, user_id) is None:
        raise PermissionError("invalid token: account not found or disabled")
    return user_id


def _bearer(header: str | None) -> str | None:
    if header and header.lower().startswith("bearer "):
        return header[7:].strip()
    return None


async def websocket_token(websocket: WebSocket, query_token: str | None) -> str | None:
    """An accepted WebSocket's bearer token: from ``?token=``, the `Authorization` header, or
    a first message ``{"type": "auth", "token": "..."}`` (browsers cannot set headers).
    Raises ``TimeoutError`` when no first message comes in time."""
    token = query_token or _bearer(websocket.headers.get("authorization"))
    if token is None:
        first = await asyncio.wait_for(websocket.receive_json(), AUTH_TIMEOUT_S)
        token = first.get("token") if isinstance(first, dict) else None
    return token


async def subscribe_profiles(
    hub: LiveHub, pool: asyncpg.Pool, sub: Subscriber, profile_ids: list[uuid.UUID] | None
) -> tuple[list[dict], list[dict]]:
    """Subscribe to the given profiles (None: every profile the user may see)."""
    known: dict[uuid.UUID, access.Grant] | None = None
    if profile_ids is None:
        known = {g.profile_id: g for g in await access.grants(pool, sub.user_id)}
        profile_ids = [p for p, g in known.items() if _allowed(g) != (False, False)]
    ok, refused = [], []
    for pid in profile_ids:
        if known is not None:
            grant = known.get(pid)
        else:
            grant = await access.profile_grant(pool, sub.user_id, pid)
        allowed = _allowed(grant)
        if allowed == (False, False):
            refused.append({"profile_id": str(pid), "detail": "profile not found"})
            continue
        hub.subscribe(sub, pid, allowed, await stream_prefs(pool, sub.user_id, pid))
        ok.append({"profile_id": str(pid), "readings": allowed[0], "alerts": allowed[1]})
    return ok, refused


def _parse_ids(values: list[str] | None) -> list[uuid.UUID] | None:
    if not values:
        return None
    return [uuid.UUID(v) for v in values]


@router.websocket("")
async def stream_ws(
    websocket: WebSocket,
    token: Annotated[str | None, Query(description="Bearer token (or send it first)")] = None,
    profile_id: Annotated[list[str] | None, Query()] = None,
) -> None:
    """WebSocket live stream. Authenticate with `Authorization: Bearer`, `?token=`, or a first
    message `{"type": "auth", "token": "..."}`. Subscribes to `?profile_id=` (repeatable) or,
    without it, to every profile the caller may see; `{"type": "subscribe", "profile_ids":
    [...]}` adds more."""
    await websocket.accept()
    app = websocket.app
    try:
        user_id = await authenticate(app, await websocket_token(websocket, token))
        ids = _parse_ids(profile_id)
    except (PermissionError, ValueError, TimeoutError) as exc:
        await websocket.send_json(
            {"type": "error", "detail": str(exc) or "authentication timed out"}
        )
        await websocket.close(code=4401)
        return
    except WebSocketDisconnect:
        return
    hub = await hub_for(app)
    sub = Subscriber(user_id)
    try:
        ok, refused = await subscribe_profiles(hub, app.state.pool, sub, ids)
        await websocket.send_json({"type": "subscribed", "profiles": ok, "refused": refused})
        reader = asyncio.create_task(_client_messages(websocket, hub, app.state.pool, sub))
        try:
            await _pump(websocket, sub)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    except WebSocketDisconnect:
        pass
    finally:
        hub.unsubscribe(sub)
    if sub.closed:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "closed", "detail": sub.closed})
            await websocket.close(code=4403 if "revoked" in sub.closed else 1011)


async def _pump(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        try:
            item = await asyncio.wait_for(sub.queue.get(), PING_S)
        except TimeoutError:
            item = '{"type":"ping"}'
        if item is None:
            return
        await websocket.send_text(item)
        if sub.closed and sub.queue.empty():  # the sentinel did not fit in a full queue
            return


async def _client_messages(
    websocket: WebSocket, hub: LiveHub, pool: asyncpg.Pool, sub: Subscriber
) -> None:
    while True:
        try:
            msg = await websocket.receive_json()
        except WebSocketDisconnect:
            sub.close("client disconnected")
            return
        except ValueError:
            sub.offer(json.dumps({"type": "error", "detail": "messages must be JSON"}))
            continue
        kind = msg.get("type") if isinstance(msg, dict) else None
        try:
            ids = [uuid.UUID(x) for x in msg.get("profile_ids", [])] if kind else []
        except (ValueError, TypeError, AttributeError):
            sub.offer(json.dumps({"type": "error", "detail": "profile_ids must be UUIDs"}))
            continue
        if kind == "subscribe":
            ok, refused = await subscribe_profiles(hub, pool, sub, ids)
            sub.offer(json.dumps({"type": "subscribed", "profiles": ok, "refused": refused}))
        elif kind == "unsubscribe":
            for pid in ids:
                hub.unsubscribe(sub, pid)
        elif kind != "pong":
            sub.offer(json.dumps({"type": "error", "detail": f"unknown message type {kind!r}"}))


class SseEvent(BaseModel):
    """What the `data:` lines carry (`event:` names the type): the WebSocket's messages."""

    reading: StreamReading | None = None
    alert: StreamAlert | None = None


@router.get(
    "/sse",
    summary="Live stream as Server-Sent Events (for clients without WebSocket)",
    response_model=SseEvent,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "Events until the client leaves (with `Accept: text/event-stream`)",
        },
        **responses(401),
    },
)
async def stream_sse(
    request: Request,
    token: Annotated[str | None, Query(description="Bearer token, if not in the header")] = None,
    profile_id: Annotated[
        list[uuid.UUID] | None, Query(description="Profiles to follow; default: all visible")
    ] = None,
) -> StreamingResponse:
    """Each message as `event: <type>` and `data: <json>`, the same JSON as the WebSocket.
    The stream is endless for clients that accept `text/event-stream` (EventSource does);
    any other client gets the `subscribed` event and the end of the response."""
    app = request.app
    try:
        user_id = await authenticate(app, token or _bearer(request.headers.get("authorization")))
    except PermissionError as exc:
        raise error(401, str(exc), {"WWW-Authenticate": "Bearer"}) from exc
    hub = await hub_for(app)
    sub = Subscriber(user_id)
    ok, refused = await subscribe_profiles(hub, app.state.pool, sub, profile_id)

    endless = "text/event-stream" in request.headers.get("accept", "")

    async def events() -> AsyncIterator[bytes]:
        try:
            first = json.dumps({"type": "subscribed", "profiles": ok, "refused": refused})
            yield f"event: subscribed\ndata: {first}\n\n".encode()
            if not endless:
                return
            while True:
                try:
                    item = await asyncio.wait_for(sub.queue.get(), PING_S)
                except TimeoutError:
                    item = '{"type":"ping"}'
                if item is not None:
                    kind = json.loads(item)["type"]
                    yield f"event: {kind}\ndata: {item}\n\n".encode()
                if item is None or (sub.closed and sub.queue.empty()):
                    reason = json.dumps({"type": "closed", "detail": sub.closed})
                    yield f"event: closed\ndata: {reason}\n\n".encode()
                    return
        finally:
            hub.unsubscribe(sub)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
