"""WebSocket ingest: a device (or its phone bridge) streams batches over one connection.

``/v1/devices/{device_id}/readings/stream``. The same batches and answers as ``POST
/v1/devices/{device_id}/readings`` without paying for an HTTP request and an authorisation
query per reading: the credential is checked when the socket opens and again every
``ingest_recheck_s`` (10 s), off the message path (see :class:`Credential`): a rotated upload
token or a revoked share stops the stream.

Client → server, one JSON batch per message (``seq`` is echoed back, optional)::

    {"seq": 17, "readings": [{"ts": "2026-11-24T07:15:00+01:00", "value": 112.0}]}

Server → client: ``{"type": "ready", "device_id": ..., "max_batch_readings": ...}`` once,
then per batch, in order, after it is committed ``{"type": "ack", "seq": 17, "accepted": 1,
"duplicates": 0}`` or ``{"type": "error", "seq": 17, "status": 422|413|503, "detail": ...,
"retry_after_s": ...}`` (nothing of a refused batch is stored; the stream stays open).
A device may send batches before the answers come: up to ``Answers.MAX_IN_FLIGHT`` are
handed to the shards at once, and each answer goes out as soon as those before it have (one
JSON message per frame; the answers ready together go out back to back).
Closes with 4401 (bad or expired credential), 4403 (not allowed) or 4404 (no such device).
With a user's access token the socket also watches the account like the live stream does
(``api.routes.stream``): it ends when the token expires, and at once when the account is disabled
or deleted, logs out everywhere or changes its password.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
import uuid
from collections.abc import Coroutine, MutableMapping
from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, HTTPException, Path, Query, WebSocket, WebSocketDisconnect
from pydantic import Field, ValidationError

from api.batch_parse import Batch, parse_batch
from api.routes.devices import DeviceOut
from api.routes.readings import (
    InvalidReadings,
    ReadingsUpload,
    UploadResult,
    batch_of,
    body_site_problem,
    keep_body_site,
    store_batch,
)
from api.routes.stream import (
    LiveHub,
    Subscriber,
    authenticate,
    watch_account,
    websocket_token,
)
from api.routes.upload_tokens import authorise_upload
from api.schemas import JsonRefused, StrictJsonRoute, loads_strict
from api.tokens import UPLOAD_TOKEN_PREFIX
from storage import json_text

log = logging.getLogger(__name__)
router = APIRouter(
    prefix="/v1/devices/{device_id}/readings", tags=["readings"], route_class=StrictJsonRoute
)


class StreamedBatch(ReadingsUpload):
    seq: int | None = Field(default=None, description="Echoed in the answer to this batch")


def _problem(seq: int | None, status: int, detail: object, retry_after_s: int = 0) -> str:
    answer: dict = {"type": "error", "seq": seq, "status": status, "detail": detail}
    if retry_after_s:
        answer["retry_after_s"] = retry_after_s
    return json.dumps(answer)


def _seq(data: object) -> int | None:
    """The batch's ``seq``, read leniently for an answer to a batch that failed validation."""
    seq = data.get("seq") if isinstance(data, dict) else None
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else None


async def _authorise(websocket: WebSocket, token: str | None, device_id: uuid.UUID) -> DeviceOut:
    state = websocket.app.state
    return await authorise_upload(state.keys, token, device_id, state.upload_checks)


async def _refuse(websocket: WebSocket, exc: HTTPException) -> None:
    await websocket.send_text(_problem(None, exc.status_code, exc.detail))
    await websocket.close(code=4000 + exc.status_code)


class Credential:
    """A stream's credential, checked again in the background every ``every_s``. A batch
    never uses a check that started more than ``every_s`` before it: when the background
    check is late (a slow database), the batch waits for one of its own, so a revoke stops
    the stream as promptly as checking with the batch would."""

    def __init__(
        self, websocket: WebSocket, token: str | None, device: DeviceOut, every_s: float
    ) -> None:
        self._websocket, self._token, self._every_s = websocket, token, every_s
        self._device, self._checked = device, time.monotonic()
        self._refused: HTTPException | None = None

    async def _check(self) -> None:
        started = time.monotonic()
        try:
            self._device = await _authorise(self._websocket, self._token, self._device.id)
        except HTTPException as exc:
            self._refused = exc
            return
        self._checked = max(self._checked, started)

    async def keep_checking(self) -> None:
        while self._refused is None:
            await asyncio.sleep(self._every_s * 0.75)
            try:
                await self._check()
            except Exception:  # the database: a batch checks (and answers) by itself
                log.warning("background credential check failed", exc_info=True)

    async def device(self) -> DeviceOut:
        """The device, if the credential still allows it; ``HTTPException`` otherwise."""
        if self._refused is None and time.monotonic() - self._checked > self._every_s:
            await self._check()
        if self._refused is not None:
            raise self._refused
        return self._device


@router.websocket("/stream")
async def stream_readings(
    websocket: WebSocket,
    device_id: Annotated[uuid.UUID, Path(description="The device's id")],
    token: Annotated[str | None, Query(description="Bearer token (or send it first)")] = None,
) -> None:
    """Stream batches of readings; each is answered once committed (see the module)."""
    await websocket.accept()
    try:
        token = await websocket_token(websocket, token)
        device = await _authorise(websocket, token, device_id)
    except HTTPException as exc:
        await _refuse(websocket, exc)
        return
    except (TimeoutError, ValueError):
        await _refuse(websocket, HTTPException(401, "not authenticated: send a bearer token"))
        return
    except WebSocketDisconnect:
        return
    try:
        watched = await _watch(websocket, token)
    except PermissionError as exc:
        await _refuse(websocket, HTTPException(401, str(exc)))
        return
    try:
        await _serve(websocket, token, device, watched)
    finally:
        if watched is not None:
            watched[0].leave(watched[1])


async def _watch(websocket: WebSocket, token: str | None) -> tuple[LiveHub, Subscriber] | None:
    """For a user's access token: the account watch that ends the socket (see the module)."""
    if token is None or token.startswith(UPLOAD_TOKEN_PREFIX):
        return None
    return await watch_account(websocket.app, await authenticate(websocket.app, token))


async def _serve(
    websocket: WebSocket,
    token: str | None,
    device: DeviceOut,
    watched: tuple[LiveHub, Subscriber] | None,
) -> None:
    app = websocket.app
    config = app.state.config
    await websocket.send_json(
        {
            "type": "ready",
            "device_id": str(device.id),
            "max_batch_readings": config.max_batch_readings,
        }
    )
    credential = Credential(websocket, token, device, config.ingest_recheck_s)
    keeper = asyncio.create_task(credential.keep_checking())
    tally = Tally()
    opened = time.monotonic()
    try:
        await _serve_batches(websocket, credential, watched, app, tally)
    finally:
        keeper.cancel()
        log.info(
            "ingest stream closed",
            extra={**dataclasses.asdict(tally), "seconds": round(time.monotonic() - opened, 1)},
        )


@dataclasses.dataclass
class Tally:
    """What a stream's batches came to, logged when it closes (one line for the stream, not
    one per message as an HTTP upload's)."""

    batches: int = 0
    accepted: int = 0
    duplicates: int = 0
    refused: int = 0  # answered with an error (nothing of the batch stored)


async def _serve_batches(
    websocket: WebSocket,
    credential: Credential,
    watched: tuple[LiveHub, Subscriber] | None,
    app: FastAPI,
    tally: Tally,
) -> None:
    """Read batches and hand each to its shard without waiting for the one before (up to
    ``MAX_IN_FLIGHT``); :class:`Answers` sends the answers in the order of the batches."""
    answers = Answers(websocket)
    try:
        with contextlib.suppress(WebSocketDisconnect):  # the device went away mid-batch
            await _read_batches(websocket, credential, watched, app, answers, tally)
    finally:
        answers.stop()


async def _read_batches(
    websocket: WebSocket,
    credential: Credential,
    watched: tuple[LiveHub, Subscriber] | None,
    app: FastAPI,
    answers: Answers,
    tally: Tally,
) -> None:
    while True:
        await answers.room()
        message = await _receive(websocket, watched[1] if watched else None)
        if message is None:  # the account watch ended the socket
            assert watched is not None
            sub = watched[1]
            status = sub.close_code - 4000 if sub.close_code > 4000 else 503
            await answers.drain()
            await websocket.send_text(_problem(None, status, sub.closed))
            await websocket.close(code=sub.close_code)
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:  # a binary frame: UTF-8 JSON too
            text = (message.get("bytes") or b"").decode("utf-8", errors="replace")
        try:
            device = await credential.device()
        except HTTPException as exc:
            await answers.drain()
            await _refuse(websocket, exc)
            return
        # Started now, in the order the batches came: each reaches its shard's queue
        # before the next one is read, so a device's batches are stored in order.
        tally.batches += 1
        answers.add(_answer(text, device, app, tally))


class Answers:
    """A socket's answers in the order of its batches. Each batch's task stores the batch,
    then sends its answer as soon as the batch before it has sent its own: answers that are
    ready together go out back to back in one pass of the event loop, however many batches
    were in flight, and a batch whose answer comes first waits for those before it."""

    MAX_IN_FLIGHT = 32  # batches of one socket handed on and not yet answered

    def __init__(self, websocket: WebSocket) -> None:
        self._websocket = websocket
        self._last: asyncio.Future[None] | None = None  # the newest batch's task
        self._in_flight = 0
        self._ended = False  # the socket failed, or the stream stopped: nothing more is sent
        self._changed = asyncio.Event()  # a batch was answered (or given up)

    def add(self, answer: Coroutine[Any, Any, str]) -> None:
        """Start storing a batch (``answer`` comes to its answer); its answer follows the
        answers of the batches added before it."""
        self._in_flight += 1
        self._last = asyncio.ensure_future(self._send_in_turn(answer, self._last))

    async def room(self) -> None:
        """Wait until fewer than ``MAX_IN_FLIGHT`` batches await their answer."""
        while self._in_flight >= self.MAX_IN_FLIGHT and not self._ended:
            await self._wait_change()

    async def drain(self) -> None:
        """Wait until every answer so far has been sent (or the socket failed)."""
        while self._in_flight and not self._ended:
            await self._wait_change()

    async def _wait_change(self) -> None:
        self._changed.clear()
        await self._changed.wait()

    async def _send_in_turn(
        self, answer: Coroutine[Any, Any, str], before: asyncio.Future[None] | None
    ) -> None:
        try:
            failure: Exception | None = None
            try:
                text = await answer
            except Exception as exc:  # reported in its turn, below
                failure = exc
            if before is not None and not before.done():
                await before  # never raises: each batch's task keeps its failures
            if self._ended:
                return
            if failure is not None:
                await self._fail(failure)
                return
            try:
                await self._websocket.send_text(text)
            except (WebSocketDisconnect, RuntimeError):  # the socket closed
                self._ended = True
            except Exception as exc:
                await self._fail(exc)
        finally:
            self._in_flight -= 1
            self._changed.set()

    async def _fail(self, exc: Exception) -> None:
        """A batch failed unforeseen: end the socket, as before pipelining."""
        self._ended = True
        log.error("ingest stream failed", exc_info=exc)
        with contextlib.suppress(Exception):
            await self._websocket.close(code=1011)

    def stop(self) -> None:
        """The socket ends: stop writing; batches still in flight are stored or not as
        their shards decide, with no one left to answer."""
        self._ended = True


async def _receive(
    websocket: WebSocket, watch: Subscriber | None
) -> MutableMapping[str, Any] | None:
    """The next message from the device; None when the account watch ends the socket."""
    if watch is None:
        return await websocket.receive()
    receiving = asyncio.ensure_future(websocket.receive())
    ending = asyncio.ensure_future(watch.queue.get())
    done, _ = await asyncio.wait({receiving, ending}, return_when=asyncio.FIRST_COMPLETED)
    ending.cancel()
    if receiving in done:
        return receiving.result()
    receiving.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await receiving
    return None


async def _answer(text: str, device: DeviceOut, app: FastAPI, tally: Tally) -> str:
    """The answer to one batch (an ack once committed, or the error), counted in ``tally``."""
    answer = await _store(text, device, app)
    if isinstance(answer, str):
        tally.refused += 1
        return answer
    seq, result = answer
    tally.accepted += result.accepted
    tally.duplicates += result.duplicates
    return json_text.dumps_text({"type": "ack", "seq": seq, **result.model_dump()})


async def _store(
    text: str, device: DeviceOut, app: FastAPI
) -> tuple[int | None, UploadResult] | str:
    """The batch's ``seq`` and what storing it came to, or the error's answer."""
    parsed = parse_batch(text, streamed=True) or _parse_fully(text)
    if isinstance(parsed, str):
        return parsed
    seq, batch = parsed
    wrong_site = body_site_problem(batch, device.kind)
    if wrong_site:
        return _problem(seq, 422, [i.model_dump() for i in wrong_site])
    try:
        state = app.state
        result = await store_batch(batch, device.id, state.router, state.config, log_upload=False)
    except InvalidReadings as invalid:
        return _problem(seq, 422, [i.model_dump() for i in invalid.items])
    except HTTPException as exc:
        retry = int((exc.headers or {}).get("Retry-After", 0))
        return _problem(seq, exc.status_code, exc.detail, retry)
    await keep_body_site(app.state.pool, device.id, batch)
    return seq, result


def _parse_fully(text: str) -> tuple[int | None, Batch] | str:
    """A batch not of the common form: parsed strictly and validated; or the error's
    answer."""
    try:
        data = loads_strict(text)
    except JsonRefused as refused:
        return _problem(None, 422, [{"loc": refused.loc, "msg": refused.msg, "type": refused.kind}])
    except ValueError as exc:
        return _problem(None, 422, [{"loc": [], "msg": f"not JSON: {exc}", "type": "json_invalid"}])
    try:
        batch = StreamedBatch.model_validate(data)
    except ValidationError as exc:
        items = [
            {"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]}
            for e in exc.errors(include_url=False, include_input=False)
        ]
        return _problem(_seq(data), 422, items)
    return batch.seq, batch_of(batch)
