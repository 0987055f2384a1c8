"""Draining the gateway queue into Vigil: HTTP batches, each sensor with its upload token.

One task per Vigil device sends its oldest unacknowledged readings (``POST
/v1/devices/{id}/readings``, at most ``batch_size``) and marks them acknowledged only after
Vigil's 2xx, which Vigil sends after its commit. The answers are those of the simulator's
uploader (``sensor_ingest.simulate.client.classify_response``): 503/429 waits
``Retry-After``; network and server errors back off exponentially, forever — the queue
holds the readings meanwhile; a 422 names the bad readings, which are dropped (logged,
counted) and the rest re-sent; 401/403/404 mean the config is wrong and are retried slowly.
A thermometer's body site (its Temperature Type) travels with its batch as ``body_site``,
so Vigil keeps it; a batch ends where the site changes.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import httpx

from sensor_ingest.ble.queue import Pending, ReadingQueue
from sensor_ingest.simulate.client import (
    BatchAction,
    classify_response,
    iso_ts,
    parse_retry_after,
    wait_or_stop,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class UploadTarget:
    device_id: str
    upload_token: str
    glucose: bool
    """Glucose goes as whole mg/dL, temperature to 0.01 °C."""


@dataclass(slots=True)
class Backoff:
    """Exponential back-off between ``first_s`` and ``max_s``."""

    first_s: float = 0.5
    max_s: float = 30.0
    current_s: float = 0.0

    def next(self) -> float:
        self.current_s = min(self.max_s, self.current_s * 2 if self.current_s else self.first_s)
        return self.current_s

    def reset(self) -> None:
        self.current_s = 0.0


def same_site(batch: list[Pending]) -> list[Pending]:
    """The batch up to the first reading at another body site: one upload names one site."""
    for i, p in enumerate(batch):
        if p.site != batch[0].site:
            return batch[:i]
    return batch


def _payload(batch: list[Pending], glucose: bool) -> dict:
    digits = 0 if glucose else 2
    readings = [{"ts": iso_ts(p.ts), "value": round(p.value, digits)} for p in batch]
    site = None if glucose else batch[0].site
    return {"readings": readings} if site is None else {"readings": readings, "body_site": site}


def _rejected_indices(body: object, size: int) -> set[int]:
    """Indices of the readings a 422 names (``loc: ["body", "readings", i, ...]``)."""
    out: set[int] = set()
    detail = body.get("detail") if isinstance(body, dict) else None
    for item in detail if isinstance(detail, list) else []:
        loc = item.get("loc", []) if isinstance(item, dict) else []
        ints = [x for x in loc if isinstance(x, int)]
        if ints and 0 <= ints[0] < size:
            out.add(ints[0])
    return out


class Uploader:
    """Sends queued readings to Vigil until stopped; ``wake`` to send new ones at once."""

    def __init__(
        self,
        queue: ReadingQueue,
        client: httpx.AsyncClient,
        targets: list[UploadTarget],
        *,
        batch_size: int = 1000,
        idle_s: float = 1.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self.queue = queue
        self.client = client
        self.targets = {t.device_id: t for t in targets}
        self.batch_size = batch_size
        self.idle_s = idle_s
        self.backoff_max_s = backoff_max_s
        self._wake = {t.device_id: asyncio.Event() for t in targets}

    def wake(self, device_id: str) -> None:
        if device_id in self._wake:
            self._wake[device_id].set()

    async def run(self, stop: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            for target in self.targets.values():
                group.create_task(self._drain(target, stop))

    async def _drain(self, target: UploadTarget, stop: asyncio.Event) -> None:
        backoff = Backoff(max_s=self.backoff_max_s)
        wake = self._wake[target.device_id]
        while not stop.is_set():
            wake.clear()
            batch = self.queue.next_batch(target.device_id, self.batch_size)
            delay = 0.0 if not batch else await self.send(target, batch, backoff)
            if not batch:
                await _wait_either(stop, wake, self.idle_s)
            elif delay and await wait_or_stop(stop, delay):
                return

    async def send(self, target: UploadTarget, batch: list[Pending], backoff: Backoff) -> float:
        """Send one batch (its readings up to a change of body site); returns how long to
        wait before the next attempt (0: go on)."""
        batch = same_site(batch)
        url = f"/v1/devices/{target.device_id}/readings"
        headers = {"Authorization": f"Bearer {target.upload_token}"}
        try:
            response = await self.client.post(
                url, json=_payload(batch, target.glucose), headers=headers
            )
        except httpx.TransportError as exc:
            self.queue.count("upload_failures")
            log.warning("device %s: Vigil unreachable (%s)", target.device_id, type(exc).__name__)
            return backoff.next()
        action = classify_response(response.status_code)
        if action is BatchAction.DONE:
            self.queue.ack([p.id for p in batch])
            backoff.reset()
            return 0.0
        self.queue.count("upload_failures")
        if action is BatchAction.RETRY_AFTER:
            return parse_retry_after(response.headers.get("Retry-After"))
        if response.status_code == 422:
            return self._drop_rejected(response, batch)
        log.error(
            "device %s: Vigil answered HTTP %d; keeping %d reading(s) queued",
            target.device_id,
            response.status_code,
            len(batch),
        )
        return backoff.next() if action is BatchAction.BACKOFF else self.backoff_max_s

    def _drop_rejected(self, response: httpx.Response, batch: list[Pending]) -> float:
        try:
            body = response.json()
        except ValueError:
            body = None
        bad = _rejected_indices(body, len(batch)) or set(range(len(batch)))
        self.queue.reject([batch[i].id for i in sorted(bad)], "HTTP 422 from Vigil")
        return 0.0


async def _wait_either(stop: asyncio.Event, wake: asyncio.Event, timeout_s: float) -> None:
    waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())}
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waiters:
            w.cancel()
