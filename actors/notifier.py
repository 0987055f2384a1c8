"""``AlertNotifier``: delivers alert events to people, off the ingest path.

One detached Ray actor per cluster. It LISTENs on the ``vigil_alerts`` channel (the shards
NOTIFY there when a batch commits with alert events it decided), finds the profile's
manager and every follower holding the ``alerts`` scope, filters by each person's
notification preferences (rules, channels, their own quiet hours; urgent alerts always
pass; escalation-only people get only escalations) and sends on each channel:

- webhooks: JSON POST signed per the Standard Webhooks specification (one ``webhook-id`` per
  delivery, kept across retries; a signature per valid secret while one is rotated, see
  :mod:`actors.webhook_signing`), only to public addresses (resolved and checked at connect
  time, see :mod:`actors.destinations`);
- push: APNs (HTTP/2, ES256 provider JWT) and FCM HTTP v1 (OAuth2 service-account token);
  a device token is deleted only on the service's definitive "unregistered" answer
  (:class:`TokenGone`), never because our own push credentials are wrong or missing;
- email through :mod:`actors.mailer` (STARTTLS and login; never clear text to a remote server).

Every delivery is queued in the database (``delivery_queue``) before its first attempt and
retried there with exponential backoff over a horizon (:class:`algorithms.delivery.
RetrySchedule`, an hour by default), so a receiver that is down for most of an hour, or a
notifier restarted meanwhile, loses nothing: a clock picks up what is due, under the same
delivery id (a receiver de-duplicates by it). Past the horizon the delivery is given up
(``gave_up`` in the alert's delivery log, which its recipient sees in the API).
Every attempt is written to ``alert_deliveries``, with a generic reason for a failure (never
a receiver's answer or a network error's text: the log must not turn into a port scanner),
and webhook URLs without their userinfo and query string. Each delivery runs in its own
task, so a receiver that never answers delays nobody else, and the shards never wait for any
of it. A follower who acknowledged (or snoozed) an alert for themselves only gets no more of
its repeats (nor, once acknowledged, its escalation).
A clock finds urgent alerts nobody acknowledged within the profile's escalation time and
re-sends them to everyone, escalation-only followers included.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import jwt

from actors import heap, metrics
from actors.credentials import PushCredentials
from actors.destinations import DestinationRefused, shown_url, webhook_client
from actors.mailer import PlaintextRefused, SmtpMailer, SmtpSettings
from actors.webhook_signing import new_message_id, signed_headers
from algorithms.delivery import RetrySchedule, muted_for_self, wants
from storage import live, notifications
from storage.live import DeviceUpdate, LiveAlert, iso

log = logging.getLogger(__name__)

NOTIFIER_NAME = "vigil-alert-notifier"


@dataclass(frozen=True, slots=True)
class NotifierConfig:
    database_url: str
    smtp: SmtpSettings | None = None  # no server: no email deliveries
    retry: RetrySchedule = field(default_factory=RetrySchedule)
    queue_poll_s: float = 5.0  # how often the queue is read for deliveries due again
    claim_s: float = 60.0  # an attempt under way holds its delivery this long at most
    http_timeout_s: float = 10.0
    escalation_check_s: float = 15.0
    webhook_allow_private: bool = False  # local test receivers only; see actors.destinations
    catch_up_s: float = 600.0  # at start, send alerts this recent that nobody delivered
    push: PushCredentials = field(default_factory=PushCredentials)
    db_pool_max: int = 5  # connections of the notifier's pool


class Permanent(Exception):
    """Delivery can never succeed (bad token, rejected payload): do not retry."""


class TokenGone(Permanent):
    """The push service's definitive answer that a device token is no longer registered
    (APNs 410 or 400 BadDeviceToken, FCM UNREGISTERED): the only answers that delete it.
    Every other permanent failure (push not configured, a rejected provider key, a wrong
    topic) is ours to fix and must not wipe users' tokens."""


class Retry(Exception):
    """Delivery failed for now; ``after_s`` is the receiver's hint, if any."""

    def __init__(self, message: str, after_s: float | None = None) -> None:
        super().__init__(message)
        self.after_s = after_s


# -- what is sent ------------------------------------------------------------------------


def alert_payload(profile_id: str, device_id: str, a: LiveAlert, event: str) -> dict:
    return {
        "event": f"alert.{event}",
        "alert": {
            "id": str(a.id),
            "profile_id": profile_id,
            "device_id": device_id,
            **a.fields(),
        },
    }


def title_and_body(a: LiveAlert, event: str) -> tuple[str, str]:
    rule = a.rule.replace("_", " ")
    value = "" if a.value is None else f" ({a.value:.0f})"
    prefix = "URGENT: " if a.urgent else ""
    again = {"repeated": " (still)", "escalated": " - not acknowledged"}.get(event, "")
    return f"{prefix}{rule}{again}", f"Vigil alert: {rule}{value} at {iso(a.reading_ts_s)}"


# -- push adapters -----------------------------------------------------------------------


class ApnsClient:
    """Apple Push Notification service, provider-token (JWT, ES256) authentication."""

    def __init__(self, config: PushCredentials, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        self._jwt: tuple[str, float] | None = None

    @property
    def configured(self) -> bool:
        c = self.config
        return bool(c.apns_key_pem and c.apns_key_id and c.apns_team_id and c.apns_topic)

    def provider_token(self, refresh: bool = False) -> str:
        now = time.time()
        if refresh or self._jwt is None or now - self._jwt[1] > 50 * 60:  # Apple: < 60 min
            token = jwt.encode(
                {"iss": self.config.apns_team_id, "iat": int(now)},
                self.config.apns_key_pem or "",
                algorithm="ES256",
                headers={"kid": self.config.apns_key_id},
            )
            self._jwt = (token, now)
        return self._jwt[0]

    def request(self, device_token: str, a: LiveAlert, event: str) -> tuple[str, dict, dict]:
        title, body = title_and_body(a, event)
        urgent = a.urgent
        headers = {
            "authorization": f"bearer {self.provider_token()}",
            "apns-topic": str(self.config.apns_topic),
            "apns-push-type": "alert",
            "apns-priority": "10" if urgent else "5",
            "apns-expiration": str(int(time.time()) + 3600),
            "apns-collapse-id": str(a.id)[:64],
        }
        payload = {
            "aps": {
                "alert": {"title": title, "body": body},
                "sound": "default",
                "interruption-level": "critical" if urgent else "time-sensitive",
            },
            "alert_id": str(a.id),
            "event": event,
        }
        return f"{self.config.apns_url}/3/device/{device_token}", headers, payload

    async def send(self, device_token: str, a: LiveAlert, event: str) -> None:
        url, headers, payload = self.request(device_token, a, event)
        r = await self.http.post(url, headers=headers, json=payload)
        if r.status_code == 200:
            return
        reason = _json(r).get("reason", r.text[:200])
        if r.status_code == 403 and reason == "ExpiredProviderToken":
            self.provider_token(refresh=True)
            raise Retry(reason, 0)
        if r.status_code == 410 or (r.status_code == 400 and reason == "BadDeviceToken"):
            raise TokenGone(f"APNs {r.status_code} {reason}")
        if r.status_code in (400, 403, 404, 405, 413):
            raise Permanent(f"APNs {r.status_code} {reason}")
        raise Retry(f"APNs {r.status_code} {reason}", _retry_after(r))


class FcmClient:
    """Firebase Cloud Messaging HTTP v1, OAuth2 access token from a service account."""

    SCOPE = "https://www.googleapis.com/auth/firebase.messaging"

    def __init__(self, config: PushCredentials, http: httpx.AsyncClient) -> None:
        self.config = config
        self.http = http
        self._token: tuple[str, float] | None = None

    @property
    def configured(self) -> bool:
        c = self.config
        return bool(c.fcm_project_id and c.fcm_client_email and c.fcm_private_key_pem)

    async def access_token(self, refresh: bool = False) -> str:
        now = time.time()
        if not refresh and self._token is not None and now < self._token[1] - 60:
            return self._token[0]
        assertion = jwt.encode(
            {
                "iss": self.config.fcm_client_email,
                "scope": self.SCOPE,
                "aud": self.config.fcm_token_url,
                "iat": int(now),
                "exp": int(now) + 3600,
            },
            self.config.fcm_private_key_pem or "",
            algorithm="RS256",
        )
        r = await self.http.post(
            self.config.fcm_token_url,
            data={
                "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                "assertion": assertion,
            },
        )
        if r.status_code != 200:
            raise Retry(f"OAuth token {r.status_code} {r.text[:200]}", _retry_after(r))
        body = r.json()
        self._token = (body["access_token"], now + float(body.get("expires_in", 3600)))
        return self._token[0]

    def message(self, device_token: str, a: LiveAlert, event: str) -> dict:
        title, body = title_and_body(a, event)
        urgent = a.urgent
        return {
            "message": {
                "token": device_token,
                "notification": {"title": title, "body": body},
                "data": {"alert_id": str(a.id), "event": event, "rule": a.rule},
                "android": {"priority": "HIGH" if urgent else "NORMAL", "ttl": "3600s"},
            }
        }

    async def send(self, device_token: str, a: LiveAlert, event: str) -> None:
        url = f"{self.config.fcm_url}/v1/projects/{self.config.fcm_project_id}/messages:send"
        token = await self.access_token()
        r = await self.http.post(
            url,
            headers={"Authorization": f"Bearer {token}"},
            json=self.message(device_token, a, event),
        )
        if r.status_code == 200:
            return
        err = _json(r).get("error", {})
        status = err.get("status", "") if isinstance(err, dict) else ""
        details = json.dumps(err)[:300] if err else r.text[:300]
        if r.status_code == 401:
            await self.access_token(refresh=True)
            raise Retry(f"FCM 401 {status}", 0)
        if "UNREGISTERED" in (status, *_fcm_error_codes(err)):
            raise TokenGone(f"FCM {r.status_code} UNREGISTERED")
        if r.status_code in (400, 403, 404) or status == "INVALID_ARGUMENT":
            raise Permanent(f"FCM {r.status_code} {status} {details}")
        raise Retry(f"FCM {r.status_code} {status}", _retry_after(r))


def _fcm_error_codes(err: object) -> list[str]:
    """The ``errorCode``s of an FCM v1 error's details (where UNREGISTERED is reported)."""
    details = err.get("details", []) if isinstance(err, dict) else []
    return [d["errorCode"] for d in details if isinstance(d, dict) and "errorCode" in d]


def _json(r: httpx.Response) -> dict:
    try:
        body = r.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(r: httpx.Response) -> float | None:
    value = r.headers.get("retry-after")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


# -- the actor ---------------------------------------------------------------------------


class AlertNotifier:
    """Decorated with ``ray.remote`` by :func:`start_notifier`; plain Python otherwise."""

    def __init__(self, config: NotifierConfig) -> None:
        self.config = config
        self._pool: asyncpg.Pool | None = None
        self._listen: asyncpg.Connection | None = None
        self._http: httpx.AsyncClient | None = None
        self._webhooks: httpx.AsyncClient | None = None
        self._apns: ApnsClient | None = None
        self._fcm: FcmClient | None = None
        self._tasks: set[asyncio.Task] = set()
        self._clock: asyncio.Task | None = None
        self._queue_clock: asyncio.Task | None = None
        self._running: set[int] = set()  # queued deliveries this notifier is on
        self._start_lock: asyncio.Lock | None = None
        self.sent = 0
        self.failed = 0

    async def start(self) -> bool:
        """Connect and LISTEN; idempotent (every API replica calls it now and then)."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._listen is not None and not self._listen.is_closed():
                return True
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self.config.database_url, min_size=1, max_size=self.config.db_pool_max
                )
            if self._http is None:
                timeout = self.config.http_timeout_s
                self._http = _http_client(timeout)
                self._webhooks = webhook_client(timeout, self.config.webhook_allow_private)
                self._apns = ApnsClient(self.config.push, _http_client(timeout, h2=True))
                self._fcm = FcmClient(self.config.push, self._http)
            conn = await asyncpg.connect(self.config.database_url)
            conn.add_termination_listener(self._on_lost)
            await conn.add_listener(live.ALERTS_CHANNEL, self._on_notify)
            self._listen = conn
            heap.settle()
            # Alerts committed while nobody listened (start-up, restart): send them now.
            if self.config.catch_up_s > 0:
                self._spawn(self._catch_up(datetime.now(UTC)))
            if self._clock is None or self._clock.done():
                self._clock = asyncio.get_running_loop().create_task(self._escalation_clock())
            if self._queue_clock is None or self._queue_clock.done():
                self._queue_clock = asyncio.get_running_loop().create_task(self._retry_clock())
            return True

    def _on_lost(self, conn: asyncpg.Connection) -> None:
        if conn is self._listen:
            log.warning("notifier lost its LISTEN connection; reconnecting")
            self._listen = None
            self._spawn(self._reconnect())

    async def _reconnect(self) -> None:
        delay = 0.5
        while True:
            try:
                await self.start()
                return
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("notifier cannot LISTEN yet: %s", exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30)

    async def status(self) -> dict:
        return {
            "sent": self.sent,
            "failed": self.failed,
            "in_flight": len(self._tasks),
            "queued_here": len(self._running),
        }

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_notify(self, conn: Any, pid: int, channel: str, payload: str) -> None:
        for message in live.messages(payload):
            self._on_message(live.decode(message))

    def _on_message(self, msg: live.LiveMessage | None) -> None:
        if not isinstance(msg, DeviceUpdate):
            return  # not a device's batch: account, share or preference changes
        for a in msg.alerts:
            if a.event in ("fired", "repeated"):
                log.info(
                    "alert dispatch",
                    extra={"request_id": msg.request_id, "alert_id": str(a.id), "event": a.event},
                )
                self._spawn(self.dispatch(str(msg.profile_id), str(msg.device_id), a, a.event))

    async def dispatch(self, profile_id: str, device_id: str, a: LiveAlert, event: str) -> int:
        """Queue one alert event for everyone who wants it and make each delivery's first
        attempt; returns the deliveries queued."""
        assert self._pool is not None
        now = time.time()
        jobs: list[tuple] = []
        people = await notifications.recipients(self._pool, uuid.UUID(profile_id), a.id)
        for person in people:
            if not wants(person, a, event, now) or muted_for_self(person, event, now):
                continue
            channels = set(person["channels"])
            payload = json.dumps(alert_payload(profile_id, device_id, a, event))
            job = (a.id, event, person["user_id"])
            if "webhook" in channels:
                for hook in person["webhooks"]:
                    hook_id = uuid.UUID(str(hook["id"]))
                    target = shown_url(hook["url"]) or ""
                    jobs.append((new_message_id(), *job, "webhook", hook_id, None, target, payload))
            if "push" in channels:
                for t in person["push_tokens"]:
                    token_id = uuid.UUID(str(t["id"]))
                    target = t["token"][:16]
                    jobs.append(
                        (new_message_id(), *job, t["platform"], None, token_id, target, payload)
                    )
            if "email" in channels and self.config.smtp is not None:
                jobs.append((new_message_id(), *job, "email", None, None, person["email"], payload))
        ids = [i for i in await notifications.enqueue(self._pool, jobs, self.config.claim_s) if i]
        for job_id in ids:
            self._spawn(self._run(job_id))
        return len(ids)

    async def _retry_clock(self) -> None:
        """Every ``queue_poll_s``, attempt the queued deliveries due again (and, at start,
        those a notifier that stopped left)."""
        assert self._pool is not None
        while True:
            try:
                due = await notifications.claim_due(
                    self._pool, self.config.claim_s, 100, sorted(self._running)
                )
                for row in due:
                    self._spawn(self._run(row["job_id"]))
            except Exception:
                log.warning("delivery queue not readable", exc_info=True)
            await asyncio.sleep(self.config.queue_poll_s)

    async def _run(self, job_id: int) -> None:
        """Attempt a queued delivery until it is done or its next attempt is the clock's."""
        assert self._pool is not None
        if job_id in self._running:
            return
        self._running.add(job_id)
        try:
            while True:
                rows = await notifications.queued(self._pool, [job_id])
                if not rows:
                    return  # its alert, endpoint or person was deleted meanwhile
                wait_s = await self._attempt(rows[0])
                if wait_s is None or wait_s > self.config.queue_poll_s:
                    return
                await asyncio.sleep(wait_s)
        finally:
            self._running.discard(job_id)

    async def _attempt(self, job: Any) -> float | None:
        """One attempt of a queued delivery; the seconds until the next one this notifier
        makes itself, or None (delivered, refused, given up, or left to the clock)."""
        assert self._pool is not None
        event, channel, attempt = job["event"], job["channel"], job["attempts"] + 1
        a = _alert_of(job, event)
        log_attempt = functools.partial(
            notifications.log_delivery,
            self._pool,
            a.id,
            event,
            job["user_id"],
            channel,
            job["target"],
            attempt,
        )
        payload = job["payload"]
        payload = json.loads(payload) if isinstance(payload, str) else dict(payload)
        if channel == "webhook":  # one delivery id (webhook-id) for all its attempts
            payload = {**payload, "delivery_id": job["delivery_id"]}
        endpoint = {"url": job["url"], "secrets": job["secrets"], "token": job["token"]}
        try:
            await self._send_once(channel, {"email": job["email"]}, endpoint, a, event, payload)
        except Permanent as exc:
            await log_attempt("failed", str(exc))
            if isinstance(exc, TokenGone):
                await notifications.forget_push_token(self._pool, job["token_id"])
            await self._given_up(job, channel)
            return None
        except Exception as exc:  # network errors, 5xx, 429, SMTP trouble
            log.info("delivery of %s by %s failed: %s", a.id, channel, type(exc).__name__)
            now = time.time()
            hint = exc.after_s if isinstance(exc, Retry) else None
            next_s = self.config.retry.next_attempt_s(attempt, job["first_s"], now, hint)
            if next_s is None:
                await log_attempt("gave_up", failure_detail(exc))
                await self._given_up(job, channel)
                return None
            await log_attempt("retrying", failure_detail(exc))
            metrics.inc("vigil_delivery_retries_total", channel=channel)
            wait_s = next_s - now
            mine = wait_s <= self.config.queue_poll_s  # held meanwhile: the clock skips it
            hold_s = self.config.claim_s if mine else 0.0
            await notifications.reschedule(self._pool, job["job_id"], attempt, next_s + hold_s)
            return wait_s
        await log_attempt("delivered")
        await notifications.dequeue(self._pool, job["job_id"])
        self.sent += 1
        if event == "fired" and a.decided_s is not None:
            metrics.observe(
                "vigil_alert_delivery_seconds", time.time() - a.decided_s, channel=channel
            )
        return None

    async def _given_up(self, job: Any, channel: str) -> None:
        assert self._pool is not None
        await notifications.dequeue(self._pool, job["job_id"])
        self.failed += 1
        metrics.inc("vigil_delivery_failures_total", channel=channel)

    async def _send_once(
        self,
        channel: str,
        person: dict,
        endpoint: dict | None,
        a: LiveAlert,
        event: str,
        payload: dict,
    ) -> None:
        assert self._webhooks is not None and self._apns is not None and self._fcm is not None
        if channel == "webhook":
            assert endpoint is not None
            body = json.dumps(payload).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "Vigil-Webhook/1",
                "X-Vigil-Event": payload["event"],
                **signed_headers(
                    endpoint["secrets"], payload["delivery_id"], body, datetime.now(UTC)
                ),
            }
            try:
                r = await self._webhooks.post(endpoint["url"], content=body, headers=headers)
            except DestinationRefused:
                raise Permanent(REFUSED_DETAIL) from None
            if r.status_code >= 300:
                raise Retry(f"receiver answered HTTP {r.status_code}", _retry_after(r))
        elif channel == "apns":
            if not self._apns.configured:
                raise Permanent("APNs is not configured")
            assert endpoint is not None
            await self._apns.send(endpoint["token"], a, event)
        elif channel == "fcm":
            if not self._fcm.configured:
                raise Permanent("FCM is not configured")
            assert endpoint is not None
            await self._fcm.send(endpoint["token"], a, event)
        elif channel == "email":
            title, text = title_and_body(a, event)
            if self.config.smtp is None:
                raise Permanent("email is not configured")
            try:
                await SmtpMailer(self.config.smtp).send(person["email"], f"Vigil: {title}", text)
            except PlaintextRefused:
                raise Permanent("refused: the SMTP server offers no TLS") from None
        else:
            raise Permanent(f"unknown channel {channel}")

    async def _catch_up(self, listening_since: datetime) -> None:
        assert self._pool is not None
        missed = await notifications.undelivered(
            self._pool, listening_since, self.config.catch_up_s
        )
        for r in missed:
            event = "fired" if r["notifications"] == 1 else "repeated"
            a = _alert_of(r, event)
            self._spawn(self.dispatch(str(r["profile_id"]), str(r["device_id"]), a, event))

    # -- escalation --------------------------------------------------------------------

    async def _escalation_clock(self) -> None:
        while True:
            await asyncio.sleep(self.config.escalation_check_s)
            try:
                await self.escalate_due()
            except Exception:
                log.exception("escalation check failed")

    async def escalate_due(self, now_s: float | None = None) -> int:
        """Escalate urgent alerts unacknowledged past their profile's escalation time."""
        assert self._pool is not None
        now = datetime.fromtimestamp(now_s if now_s is not None else time.time(), UTC)
        rows = await notifications.due_escalations(self._pool, now)
        for r in rows:
            a = _alert_of(r, "escalated")
            msg = DeviceUpdate(r["profile_id"], r["device_id"], alerts=(a,))
            await live.publish(self._pool, msg)
            await self.dispatch(str(msg.profile_id), str(msg.device_id), a, "escalated")
        return len(rows)

    async def stop(self) -> None:
        """Stop listening and close every connection (deliveries in flight are cancelled)."""
        conn, self._listen = self._listen, None
        if conn is not None:
            await conn.close()
        tasks = [t for t in (self._clock, self._queue_clock, *self._tasks) if t is not None]
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for client in (self._http, self._webhooks, self._apns.http if self._apns else None):
            if client is not None:
                await client.aclose()
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def drain(self, timeout_s: float = 30) -> int:
        """Wait for the deliveries in flight (tests, shutdown), and for those they start (a
        dispatch starts each delivery's first attempt); returns how many remain."""
        deadline = time.monotonic() + timeout_s
        while self._tasks and (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(
                    asyncio.gather(*list(self._tasks), return_exceptions=True), left
                )
        return len(self._tasks)


REFUSED_DETAIL = "refused: the destination is not a public internet address"


def failure_detail(exc: BaseException) -> str:
    """What the delivery log says of a failed attempt: our own reasons, or a category;
    never an exception's text (it can carry internal addresses and what they answered)."""
    if isinstance(exc, Permanent | Retry):
        return str(exc)[:300]
    if isinstance(exc, httpx.TimeoutException | TimeoutError):
        return "timed out"
    if isinstance(exc, httpx.TransportError | OSError):
        return "could not connect"
    return "delivery failed"


def _alert_of(r: Any, event: str) -> LiveAlert:
    """An alert row as a live message carries it."""
    return LiveAlert(
        id=r["id"],
        rule=r["rule"],
        event=event,
        severity=r["severity"],
        value=r["value"],
        threshold=r["threshold"],
        reading_ts_s=r["ts"],
        received_s=r["rx"],
        decided_s=r["at"],
    )


def _http_client(timeout_s: float, h2: bool = False) -> httpx.AsyncClient:
    # APNs speaks HTTP/2 only (httpx[http2] brings the h2 package for it).
    return httpx.AsyncClient(timeout=timeout_s, http2=h2)
