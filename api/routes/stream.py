"""Live stream: each new reading and each alert event of the profiles a client may see.

``GET /v1/stream`` (WebSocket) and ``GET /v1/stream/sse`` (Server-Sent Events). Every API
replica keeps one PostgreSQL connection that LISTENs on ``vigil_live``: the shards NOTIFY
once per committed batch per device (PostgreSQL delivers a NOTIFY only when its transaction
commits), so any number of replicas see every reading without polling the database. A
share that is revoked (or loses scopes) NOTIFYs too; the replica re-checks that follower's
access and closes the stream when nothing it subscribed to remains readable. Alert events
follow each person's notification preferences (channel ``stream``, rules, quiet hours;
urgent passes), re-read when they change.

A stream lives no longer than the permission it was opened under: it ends when its access
token expires (unless the client sends a fresh one, ``{"type": "auth", "token": ...}``),
and within moments when the account is disabled or deleted, logs out everywhere or changes
its password: the ``users`` trigger NOTIFYs ``{"account": ..., "why": ...}`` and every
replica closes that user's streams (and user-authenticated ingest sockets, which watch the
same hub). As on every route, an access token stays valid until it expires (at most 15
minutes): a stream reopened with it after a logout everywhere ends at that expiry.

Messages (JSON): ``{"type": "reading", ...}``, ``{"type": "alert", ...}``,
``{"type": "subscribed", "profiles": [...]}``, ``{"type": "revoked", "profile_id": ...}``,
``{"type": "ping"}``, ``{"type": "error", "detail": ...}``, ``{"type": "renewed", ...}``,
``{"type": "closed", "detail": ...}`` (then close code ``CLOSE_REAUTH`` or ``CLOSE_FORBIDDEN``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
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
from algorithms.delivery import stream_wants
from api.errors import error, responses
from api.schemas import StrictJsonRoute, loads_strict
from api.tokens import Claims, InvalidToken
from storage import access, accounts, json_text, live, notifications
from storage.alerts import acted_for_self
from storage.live import AccountEnded, DeviceUpdate, LiveAlert, ShareChanged

log = logging.getLogger(__name__)
router = APIRouter(prefix="/v1/stream", tags=["stream"], route_class=StrictJsonRoute)

PING_S = 20.0
PING = '{"type":"ping"}'
QUEUE_MAX = 2000
AUTH_TIMEOUT_S = 10.0
MAX_PROFILE_IDS = 100  # in one subscribe or unsubscribe message
CLOSE_REAUTH = 4401  # token expired, or the account logged out everywhere / changed password
CLOSE_FORBIDDEN = 4403  # access revoked, or the account disabled or deleted
CLOSE_SERVER = 1011  # database connection lost, or the client read too slowly
TOKEN_EXPIRED = "access token expired; reconnect (or send a fresh one) to continue"
# Why an account event ends a user's streams: the reason shown and the close code.
ACCOUNT_ENDED = {
    "disabled": ("account disabled", CLOSE_FORBIDDEN),
    "deleted": ("account deleted", CLOSE_FORBIDDEN),
    "logout": ("logged out everywhere; log in again", CLOSE_REAUTH),
    "password": ("password changed; log in again", CLOSE_REAUTH),
}


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


def reading_message(msg: DeviceUpdate) -> str | None:
    r = msg.reading
    if r is None:
        return None
    return json_text.dumps_text(  # the ids (from decode: uuid.UUID) and the time by orjson
        {
            "type": "reading",
            "profile_id": msg.profile_id,
            "device_id": msg.device_id,
            "kind": msg.kind,
            "ts": datetime.fromtimestamp(r.ts_s, UTC),
            "value": r.value,
            "rate_per_min": r.rate_per_min,
            "direction": r.direction,
            "prediction_20": r.prediction_20,
        }
    )


def alert_message(msg: DeviceUpdate, a: LiveAlert) -> str:
    return json_text.dumps_text(
        {
            "type": "alert",
            "event": a.event,
            "alert_id": str(a.id),
            "profile_id": str(msg.profile_id),
            "device_id": str(msg.device_id),
            **a.fields(),
        }
    )


@dataclass(eq=False)
class Subscriber:
    """One connected client: what it may see of each profile it subscribed to."""

    user_id: uuid.UUID
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    profiles: dict[uuid.UUID, tuple[bool, bool]] = field(default_factory=dict)  # readings, alerts
    prefs: dict[uuid.UUID, dict | None] = field(default_factory=dict)  # notification prefs
    closed: str | None = None  # why the server ends this stream
    close_code: int = CLOSE_SERVER
    expiry: asyncio.TimerHandle | None = None
    # The keep-alive: one timer for each PING_S of waiting, not one per message.
    _ping: asyncio.TimerHandle | None = field(default=None, repr=False)
    _waiting_since: float | None = field(default=None, repr=False)  # loop time; None: busy

    async def next_item(self) -> str | None:
        """The next message for the client, or a ping once it has waited ``PING_S`` for one
        (it keeps proxies from closing a quiet stream); None ends the stream.

        Waiting on the queue with ``asyncio.wait_for`` cost a task, a timer and two callbacks
        for every message (5-9 µs each on this machine); the ping's one timer is re-armed
        only when it comes due while messages still flow."""
        if self.queue.empty():
            loop = asyncio.get_running_loop()
            self._waiting_since = loop.time()
            if self._ping is None:
                self._ping = loop.call_later(PING_S, self._ping_due)
        item = await self.queue.get()
        self._waiting_since = None
        return item

    def _ping_due(self) -> None:
        self._ping = None
        since = self._waiting_since
        if since is None:  # a message is being handled: the next wait arms the timer again
            return
        loop = asyncio.get_running_loop()
        left = since + PING_S - loop.time()
        if left > 0:  # messages came meanwhile; this wait began less than PING_S ago
            self._ping = loop.call_later(left, self._ping_due)
            return
        with contextlib.suppress(asyncio.QueueFull):
            self.queue.put_nowait(PING)

    def stop_pinging(self) -> None:
        if self._ping is not None:
            self._ping.cancel()
            self._ping = None

    def offer(self, item: str) -> None:
        if self.closed:
            return
        try:
            self.queue.put_nowait(item)
        except asyncio.QueueFull:
            self.close("too slow: messages were not read in time")

    def close(self, reason: str, code: int = CLOSE_SERVER) -> None:
        if self.closed is None:
            self.closed, self.close_code = reason, code
            with contextlib.suppress(asyncio.QueueFull):
                self.queue.put_nowait(None)

    def arm_expiry(self, expires_at: float) -> None:
        """End the stream when the access token expires (again, for a renewed token)."""
        if self.expiry is not None:
            self.expiry.cancel()
        delay = max(0.0, expires_at - time.time())
        self.expiry = asyncio.get_running_loop().call_later(
            delay, self.close, TOKEN_EXPIRED, CLOSE_REAUTH
        )


class LiveHub:
    """The replica's LISTEN connection and its subscribers, by profile."""

    def __init__(self, database_url: str, pool: asyncpg.Pool) -> None:
        self._url = database_url
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._lock = asyncio.Lock()
        self._by_profile: dict[uuid.UUID, set[Subscriber]] = defaultdict(set)
        self._by_user: dict[uuid.UUID, set[Subscriber]] = defaultdict(set)
        self._sent_log: list[tuple] = []  # alert events handed to streams, for the log
        self._flusher: asyncio.Task | None = None
        self._rechecks: set[asyncio.Task] = set()  # held: the loop keeps only weak references
        self.received = 0

    async def ensure_listening(self) -> None:
        async with self._lock:
            if self._conn is not None and not self._conn.is_closed():
                return
            self._conn = await asyncpg.connect(self._url)
            self._conn.add_termination_listener(self._on_lost)
            await self._conn.add_listener(live.CHANNEL, self._on_notify)

    def _on_lost(self, conn: asyncpg.Connection) -> None:
        log.warning("live stream LISTEN connection lost; closing streams so clients reconnect")
        self._conn = None
        for subs in list(self._by_user.values()):
            for sub in list(subs):
                sub.close("server connection to the database was lost; reconnect")

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        for message in live.messages(payload):
            self._on_message(message)

    def _on_message(self, message: str) -> None:
        self.received += 1
        profile = live.update_profile(message)
        if profile is not None and profile not in self._by_profile:
            return  # a device update no stream here follows: not worth decoding
        msg = live.decode(message, profile)
        if msg is None:
            return
        if isinstance(msg, AccountEnded):  # disabled, deleted, logged out everywhere, password
            self.end_account(msg.account_id, msg.why)
        elif isinstance(msg, ShareChanged):
            self._start_recheck(msg.profile_id, msg.follower_id)
        elif isinstance(msg, DeviceUpdate):
            self._device_update(msg)
        else:  # someone acknowledged, snoozed or changed preferences
            self._start_recheck(msg.profile_id, msg.user_id)

    def _device_update(self, msg: DeviceUpdate) -> None:
        profile = msg.profile_id
        subs = self._by_profile.get(profile)
        if not subs:
            return
        reading = reading_message(msg)
        alerts = [(a, alert_message(msg, a)) for a in msg.alerts]
        for sub in list(subs):
            may_read, may_alert = sub.profiles.get(profile, (False, False))
            if reading is not None and may_read:
                sub.offer(reading)
            if may_alert and alerts:
                now = datetime.now(UTC)
                prefs = sub.prefs.get(profile)
                for a, text in alerts:
                    if stream_wants(prefs, a, a.event, now.timestamp()):
                        sub.offer(text)
                        self._sent_log.append((a.id, a.event, sub.user_id, now))
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

    def _start_recheck(self, profile_id: uuid.UUID, user_id: uuid.UUID) -> None:
        task = asyncio.get_running_loop().create_task(self._recheck_or_end(profile_id, user_id))
        self._rechecks.add(task)
        task.add_done_callback(self._rechecks.discard)

    async def _recheck_or_end(self, profile_id: uuid.UUID, user_id: uuid.UUID) -> None:
        """Re-read the user's access; if that fails, end their streams of the profile (they
        reconnect and are authorised afresh) rather than keep sending on the old access."""
        try:
            await self._recheck(profile_id, user_id)
        except Exception:
            log.warning("could not re-check stream access; ending those streams", exc_info=True)
            for sub in list(self._by_profile.get(profile_id, ())):
                if sub.user_id == user_id:
                    sub.close("could not re-check your access; reconnect")

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
                    sub.close("access revoked", CLOSE_FORBIDDEN)
            else:
                sub.profiles[profile_id] = allowed
                sub.prefs[profile_id] = await stream_prefs(self._pool, follower_id, profile_id)

    def join(self, sub: Subscriber, claims: Claims) -> None:
        """Watch the subscriber's account and token: account events and expiry end it."""
        self._by_user[sub.user_id].add(sub)
        sub.arm_expiry(claims.expires_at)

    def leave(self, sub: Subscriber) -> None:
        """The stream ended: forget it everywhere."""
        self.unsubscribe(sub)
        if sub.expiry is not None:
            sub.expiry.cancel()
        sub.stop_pinging()
        subs = self._by_user.get(sub.user_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                self._by_user.pop(sub.user_id, None)

    def end_account(self, user_id: uuid.UUID, why: str) -> None:
        reason, code = ACCOUNT_ENDED.get(why, ACCOUNT_ENDED["disabled"])
        for sub in list(self._by_user.get(user_id, ())):
            sub.close(reason, code)

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
    (None: none saved and nothing acknowledged or snoozed for themselves only, every alert
    event shows)."""
    row = await notifications.get_prefs(pool, user_id, profile_id)
    for_self = await acted_for_self(pool, user_id, profile_id)
    if row is None and not for_self:
        return None
    if row is None:
        return {**notifications.DEFAULT_PREFS, "for_self": for_self}
    quiet = row["quiet"]
    return {
        "rules": row["rules"],
        "channels": row["channels"],
        "quiet": json.loads(quiet) if isinstance(quiet, str) else quiet,
        "timezone": row["timezone"],
        "escalation_only": row["escalation_only"],
        "for_self": for_self,
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


async def authenticate(app: Any, token: str | None) -> Claims:
    """The claims of a valid bearer token of an active account; raises PermissionError."""
    if not token:
        raise PermissionError("not authenticated: send a bearer token")
    try:
        claims = await app.state.keys.verify(token)
    except InvalidToken as exc:
        raise PermissionError(f"invalid token: {exc}") from exc
    if await accounts.active_user(app.state.pool, claims.user_id) is None:
        raise PermissionError("invalid token: account not found or disabled")
    return claims


async def watch_account(app: Any, claims: Claims) -> tuple[LiveHub, Subscriber]:
    """A subscriber (no profiles yet) that account events and token expiry end."""
    hub = await hub_for(app)
    sub = Subscriber(claims.user_id)
    hub.join(sub, claims)
    return hub, sub


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
        first = await asyncio.wait_for(receive_message(websocket), AUTH_TIMEOUT_S)
        token = first.get("token") if isinstance(first, dict) else None
    return token


async def receive_message(websocket: WebSocket) -> Any:
    """The client's next message, parsed by ``loads_strict``: ``ValueError`` (with a message
    to show the client) for text that is not JSON, repeats a key or nests too deeply."""
    message = await websocket.receive()
    if message["type"] == "websocket.disconnect":
        raise WebSocketDisconnect(message.get("code", 1000), message.get("reason"))
    text = message.get("text")
    if text is None:
        text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
    return loads_strict(text)


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
        claims = await authenticate(app, await websocket_token(websocket, token))
        ids = _parse_ids(profile_id)
    except (PermissionError, ValueError, TimeoutError) as exc:
        await websocket.send_json(
            {"type": "error", "detail": str(exc) or "authentication timed out"}
        )
        await websocket.close(code=CLOSE_REAUTH)
        return
    except WebSocketDisconnect:
        return
    hub, sub = await watch_account(app, claims)
    try:
        ok, refused = await subscribe_profiles(hub, app.state.pool, sub, ids)
        await websocket.send_json({"type": "subscribed", "profiles": ok, "refused": refused})
        reader = asyncio.create_task(_client_messages(websocket, hub, app, sub))
        try:
            await _pump(websocket, sub)
        finally:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await reader
    except WebSocketDisconnect:
        pass
    finally:
        hub.leave(sub)
    if sub.closed:
        with contextlib.suppress(Exception):
            await websocket.send_json({"type": "closed", "detail": sub.closed})
            await websocket.close(code=sub.close_code)


async def send_all(websocket: WebSocket, texts: list[str]) -> None:
    """Send messages that are ready together back to back, without handing the event loop
    to anything else between them: the transport takes them as one write batch (Serve's
    message queue passes them on in one go). Still one JSON message per frame."""
    for text in texts:
        await websocket.send_text(text)


def _ready(first: str | None, queue: asyncio.Queue) -> list[str | None]:
    """``first`` and every message already queued behind it, up to the end sentinel."""
    items = [first]
    while first is not None and not queue.empty():
        first = queue.get_nowait()
        items.append(first)
    return items


async def _pump(websocket: WebSocket, sub: Subscriber) -> None:
    while True:
        items = _ready(await sub.next_item(), sub.queue)
        await send_all(websocket, [i for i in items if i is not None])
        if items[-1] is None:
            return
        if sub.closed and sub.queue.empty():  # the sentinel did not fit in a full queue
            return


async def renew(app: Any, sub: Subscriber, token: object) -> str:
    """A fresh access token of the same user, sent on an open stream, extends it."""
    try:
        claims = await authenticate(app, token if isinstance(token, str) else None)
    except PermissionError as exc:
        return json.dumps({"type": "error", "detail": str(exc)})
    if claims.user_id != sub.user_id:
        return json.dumps({"type": "error", "detail": "the token belongs to another user"})
    sub.arm_expiry(claims.expires_at)
    expires = datetime.fromtimestamp(claims.expires_at, UTC).isoformat()
    return json.dumps({"type": "renewed", "expires_at": expires})


async def _client_messages(websocket: WebSocket, hub: LiveHub, app: Any, sub: Subscriber) -> None:
    pool = app.state.pool
    while True:
        try:
            msg = await receive_message(websocket)
        except WebSocketDisconnect:
            sub.close("client disconnected")
            return
        except ValueError as exc:
            detail = f"messages must be JSON objects with unique keys: {exc}"
            sub.offer(json.dumps({"type": "error", "detail": detail}))
            continue
        kind = msg.get("type") if isinstance(msg, dict) else None
        raw = msg.get("profile_ids", []) if kind else []
        if isinstance(raw, list) and len(raw) > MAX_PROFILE_IDS:
            detail = f"at most {MAX_PROFILE_IDS} profile_ids in one message"
            sub.offer(json.dumps({"type": "error", "detail": detail}))
            continue
        try:
            ids = [uuid.UUID(x) for x in raw]
        except (ValueError, TypeError, AttributeError):
            sub.offer(json.dumps({"type": "error", "detail": "profile_ids must be UUIDs"}))
            continue
        if kind == "subscribe":
            ok, refused = await subscribe_profiles(hub, pool, sub, ids)
            sub.offer(json.dumps({"type": "subscribed", "profiles": ok, "refused": refused}))
        elif kind == "unsubscribe":
            for pid in ids:
                hub.unsubscribe(sub, pid)
        elif kind == "auth":
            sub.offer(await renew(app, sub, msg.get("token")))
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
        claims = await authenticate(app, token or _bearer(request.headers.get("authorization")))
    except PermissionError as exc:
        raise error(401, str(exc), {"WWW-Authenticate": "Bearer"}) from exc
    hub, sub = await watch_account(app, claims)
    ok, refused = await subscribe_profiles(hub, app.state.pool, sub, profile_id)

    endless = "text/event-stream" in request.headers.get("accept", "")

    async def events() -> AsyncIterator[bytes]:
        try:
            first = json.dumps({"type": "subscribed", "profiles": ok, "refused": refused})
            yield f"event: subscribed\ndata: {first}\n\n".encode()
            if not endless:
                return
            while True:
                item = await sub.next_item()
                if item is not None:
                    kind = json.loads(item)["type"]
                    yield f"event: {kind}\ndata: {item}\n\n".encode()
                if item is None or (sub.closed and sub.queue.empty()):
                    reason = json.dumps({"type": "closed", "detail": sub.closed})
                    yield f"event: closed\ndata: {reason}\n\n".encode()
                    return
        finally:
            hub.leave(sub)

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
