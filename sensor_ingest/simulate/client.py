"""Talking to the Vigil HTTP API as a phone app would: account, token, devices, readings.

Contract (``/v1``): ``POST auth/signup`` (JSON, 202 whether or not the email exists),
``POST auth/token`` (form ``username``/``password`` -> bearer token), ``GET``/``POST devices``,
``POST devices/{id}/readings`` (``{readings: [{ts, value}]}``, at most 10,000 per batch ->
``{accepted, duplicates}`` after commit). A 503 with ``Retry-After`` is back-pressure: wait
and re-send the same batch (re-sent readings come back as duplicates); a 401 means renew the
token and re-send; any other 4xx rejects the batch for good.
"""

from __future__ import annotations

import asyncio
import email.utils
import enum
import logging
import math
import time
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import httpx
import numpy as np

from algorithms.sensors import SensorKind
from sensor_ingest.simulate.stats import SimulationStats

log = logging.getLogger(__name__)

MAX_BATCH_READINGS = 10_000
RENEW_MARGIN_S = 30.0


class ApiError(RuntimeError):
    """The API answered a management call (signup, token, devices) with an error."""

    def __init__(self, what: str, response: httpx.Response) -> None:
        self.status_code = response.status_code
        self.body = response.text
        super().__init__(f"{what}: HTTP {response.status_code} {self.body[:500]}")


@dataclass(frozen=True, slots=True)
class DeviceRequest:
    """A device the simulator wants registered."""

    kind: SensorKind
    serial: str
    interval_s: int
    model: str | None = None

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "kind": str(self.kind),
            "serial": self.serial,
            "interval_s": self.interval_s,
        }
        if self.model is not None:
            body["model"] = self.model
        return body


@dataclass(frozen=True, slots=True)
class Device:
    """A device as the API knows it."""

    id: str
    kind: SensorKind
    serial: str
    interval_s: int
    model: str | None = None

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Device:
        return cls(
            id=str(data["id"]),
            kind=SensorKind(data["kind"]),
            serial=str(data["serial"]),
            interval_s=int(data.get("interval_s") or 0),
            model=data.get("model"),
        )


class BatchAction(enum.Enum):
    """What to do with a readings batch after the API's answer."""

    DONE = "done"
    RETRY_AFTER = "retry_after"  # back-pressure: wait Retry-After, re-send
    REAUTH = "reauth"  # renew the token, re-send
    SKIP = "skip"  # rejected for good: log and drop
    BACKOFF = "backoff"  # transient server failure: back off, re-send a few times


def classify_response(status_code: int) -> BatchAction:
    """Map an HTTP status of a readings POST to the action the client takes."""
    if 200 <= status_code < 300:
        return BatchAction.DONE
    if status_code == 401:
        return BatchAction.REAUTH
    if status_code in (429, 503):
        return BatchAction.RETRY_AFTER
    if 400 <= status_code < 500:
        return BatchAction.SKIP
    return BatchAction.BACKOFF


def parse_retry_after(
    value: str | None, *, now: float | None = None, default: float = 1.0, maximum: float = 120.0
) -> float:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date)."""
    if not value:
        return default
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return default
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - (time.time() if now is None else now)
    if not math.isfinite(seconds):
        return default
    return min(max(seconds, 0.0), maximum)


def iso_ts(epoch_s: float) -> str:
    """ISO-8601 with an explicit UTC offset, e.g. ``2024-05-01T12:00:00+00:00``."""
    return datetime.fromtimestamp(epoch_s, tz=UTC).isoformat()


def readings_payload(kind: SensorKind, ts: np.ndarray, values: np.ndarray) -> list[dict[str, Any]]:
    """Readings as the API takes them; glucose as whole mg/dL, temperature to 0.01 °C."""
    pairs = zip(ts.tolist(), values.tolist(), strict=True)
    if SensorKind(kind) is SensorKind.GLUCOSE:
        return [{"ts": iso_ts(t), "value": round(v)} for t, v in pairs]
    return [{"ts": iso_ts(t), "value": round(v, 2)} for t, v in pairs]


def chunked(items: Sequence[Any], size: int = MAX_BATCH_READINGS) -> Iterator[Sequence[Any]]:
    """Consecutive slices of at most ``size`` items."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def wait_or_stop(stop: asyncio.Event | None, seconds: float) -> bool:
    """Sleep ``seconds`` unless ``stop`` is set first; True when stopping."""
    if stop is None:
        await asyncio.sleep(max(0.0, seconds))
        return False
    if stop.is_set():
        return True
    try:
        await asyncio.wait_for(stop.wait(), timeout=max(0.0, seconds))
    except TimeoutError:
        return False
    return True


class VigilSession:
    """A logged-in user on a shared ``httpx.AsyncClient`` (whose ``base_url`` is the API).

    Holds the bearer token, renews it once for all callers when it expires or the API
    answers 401, and bounds the number of requests in flight.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        email: str,
        password: str,
        *,
        max_in_flight: int = 8,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.email = email
        self._password = password
        self._token: str | None = None
        self._expires_at: float | None = None
        self._monotonic = monotonic
        self._lock = asyncio.Lock()
        self._slots = asyncio.Semaphore(max_in_flight)

    @property
    def token(self) -> str | None:
        return self._token

    async def login(self) -> None:
        """Get a fresh access token with the password grant."""
        form = {"grant_type": "password", "username": self.email, "password": self._password}
        async with self._slots:
            response = await self.client.post("/v1/auth/token", data=form)
        if response.status_code != 200:
            raise ApiError(f"token for {self.email}", response)
        body = response.json()
        self._token = body["access_token"]
        expires_in = body.get("expires_in")
        self._expires_at = self._monotonic() + float(expires_in) if expires_in else None
        log.debug("logged in as %s (token expires in %s s)", self.email, expires_in)

    async def renew(self, stale: str | None) -> None:
        """Log in again unless another task already replaced the ``stale`` token."""
        async with self._lock:
            if self._token == stale:
                log.info("renewing the access token of %s", self.email)
                await self.login()

    async def fresh_token(self) -> str | None:
        """The bearer token, renewed first if it is about to expire."""
        token = self._token
        if self._expires_at is not None and self._monotonic() >= self._expires_at - RENEW_MARGIN_S:
            await self.renew(token)
        return self._token

    async def send(
        self, method: str, url: str, *, json: Any = None
    ) -> tuple[httpx.Response, str | None]:
        """One authorised request, no retries; returns the response and the token it used."""
        token = await self.fresh_token()
        headers = {"Authorization": f"Bearer {token}"}
        async with self._slots:
            response = await self.client.request(method, url, json=json, headers=headers)
        return response, token

    async def request(self, method: str, url: str, *, json: Any = None) -> httpx.Response:
        """An authorised request, renewing the token and re-sending once on 401."""
        response, token = await self.send(method, url, json=json)
        if response.status_code == 401:
            await self.renew(token)
            response, _ = await self.send(method, url, json=json)
        return response


async def ensure_account(
    client: httpx.AsyncClient, email: str, password: str, name: str, *, max_in_flight: int = 8
) -> VigilSession:
    """Sign up (or find the account already there) and log in."""
    response = await client.post(
        "/v1/auth/signup", json={"email": email, "password": password, "name": name}
    )
    if response.status_code in (201, 202):  # 202: created, or exists (Vigil does not say)
        log.info("signed up %s", email)
    elif response.status_code == 409:
        log.info("account %s exists; logging in", email)
    else:
        raise ApiError(f"signup of {email}", response)
    session = VigilSession(client, email, password, max_in_flight=max_in_flight)
    await session.login()
    return session


def _device_list(body: Any) -> list[dict[str, Any]]:
    if isinstance(body, list):
        return body
    for key in ("items", "devices", "data", "results"):
        if isinstance(body, dict) and isinstance(body.get(key), list):
            return body[key]
    raise ValueError(f"unexpected device list: {str(body)[:200]}")


async def list_devices(session: VigilSession) -> list[Device]:
    """The caller's devices."""
    response = await session.request("GET", "/v1/devices")
    if response.status_code != 200:
        raise ApiError("device list", response)
    return [Device.from_json(item) for item in _device_list(response.json())]


async def ensure_devices(session: VigilSession, wanted: Sequence[DeviceRequest]) -> list[Device]:
    """Register the ``wanted`` devices, reusing those the caller already has by serial.

    Returns the devices in the order of ``wanted``. A serial registered with another kind
    is an error (its readings would be rejected).
    """
    by_serial = {device.serial: device for device in await list_devices(session)}

    async def register(request: DeviceRequest) -> Device:
        existing = by_serial.get(request.serial)
        if existing is None:
            response = await session.request("POST", "/v1/devices", json=request.payload())
            if response.status_code == 201:
                existing = Device.from_json(response.json())
                log.info("registered %s device %s as %s", request.kind, request.serial, existing.id)
            elif response.status_code == 409:  # raced with another registration: look again
                again = {d.serial: d for d in await list_devices(session)}
                if request.serial not in again:
                    raise ApiError(
                        f"device {request.serial} (serial taken by another account?)", response
                    )
                existing = again[request.serial]
            else:
                raise ApiError(f"registering device {request.serial}", response)
        if existing.kind is not SensorKind(request.kind):
            raise ValueError(
                f"device {request.serial} exists as {existing.kind}, wanted {request.kind}"
            )
        return existing

    return list(await asyncio.gather(*(register(request) for request in wanted)))


class TransientError(Exception):
    """The batch may or may not have arrived (network failure, connection lost): re-send."""


@dataclass(frozen=True, slots=True)
class Answer:
    """Vigil's answer to one batch, whichever the transport."""

    status: int  # HTTP status (an ingest WebSocket answers the same codes; an ack is 200)
    token: str | None  # the bearer token the attempt used
    result: dict[str, Any] | None = None  # {accepted, duplicates} when stored
    retry_after: str | None = None
    detail: str = ""


async def deliver(
    attempt: Callable[[], Awaitable[Answer]],
    session: VigilSession,
    device_id: str,
    size: int,
    stats: SimulationStats,
    *,
    stop: asyncio.Event | None = None,
    max_attempts: int = 8,
) -> bool:
    """Deliver one batch of ``size`` readings by calling ``attempt`` until Vigil took it.

    Back-pressure (503/429) is waited out for as long as it lasts; a 401 renews the token;
    server errors and transient failures are retried with exponential back-off up to
    ``max_attempts``; any other 4xx is logged and the batch dropped. Returns True once the
    API has acknowledged the batch; False if it was dropped or ``stop`` was set meanwhile.
    """
    stats.batches += 1
    stats.sent += size
    failures = 0
    backoff = 0.5
    while True:
        try:
            answer: Answer | None = await attempt()
        except (httpx.TransportError, TransientError) as exc:
            failures += 1
            log.warning("device %s: %s (attempt %d)", device_id, exc.__class__.__name__, failures)
            action, delay, answer = BatchAction.BACKOFF, backoff, None
        else:
            assert answer is not None  # attempt() answers or raises
            action = classify_response(answer.status)
            delay = backoff
        if action is BatchAction.DONE:
            assert answer is not None and answer.result is not None
            stats.accepted += int(answer.result.get("accepted", 0))
            stats.duplicates += int(answer.result.get("duplicates", 0))
            return True
        if action is BatchAction.SKIP:
            assert answer is not None
            log.error(
                "device %s: batch of %d rejected: HTTP %d %s",
                device_id,
                size,
                answer.status,
                answer.detail[:2000],
            )
            stats.errors += 1
            return False
        if action is BatchAction.REAUTH:
            assert answer is not None
            failures += 1
            try:
                await session.renew(answer.token)
            except ApiError as exc:
                log.error("device %s: cannot renew the token: %s", device_id, exc)
                stats.errors += 1
                return False
            delay = 0.0
        elif action is BatchAction.RETRY_AFTER:
            assert answer is not None
            delay = parse_retry_after(answer.retry_after)
            log.debug("device %s: back-pressure, retrying in %.1f s", device_id, delay)
        else:  # BACKOFF
            if answer is not None:
                failures += 1
                log.warning("device %s: HTTP %d, retrying", device_id, answer.status)
            backoff = min(backoff * 2, 30.0)
        if failures >= max_attempts:
            log.error("device %s: giving up a batch of %d readings", device_id, size)
            stats.errors += 1
            return False
        stats.retries += 1
        if await wait_or_stop(stop, delay):
            log.info("device %s: stopping with a batch of %d unsent", device_id, size)
            return False


async def post_readings(
    session: VigilSession,
    device_id: str,
    readings: list[dict[str, Any]],
    stats: SimulationStats,
    *,
    stop: asyncio.Event | None = None,
    max_attempts: int = 8,
) -> bool:
    """Deliver one batch (at most 10,000 readings) with ``POST …/readings`` (see
    :func:`deliver` for retries)."""
    url = f"/v1/devices/{device_id}/readings"
    body = {"readings": readings}

    async def attempt() -> Answer:
        response, token = await session.send("POST", url, json=body)
        ok = 200 <= response.status_code < 300
        return Answer(
            status=response.status_code,
            token=token,
            result=response.json() if ok else None,
            retry_after=response.headers.get("Retry-After"),
            detail=response.text,
        )

    return await deliver(
        attempt, session, device_id, len(readings), stats, stop=stop, max_attempts=max_attempts
    )
