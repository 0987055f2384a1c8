"""An ingest socket's answers go out in the order of its batches, whatever order the shards
answer in; a batch that fails unforeseen ends the socket (1011) after the answers before it;
no more than ``MAX_IN_FLIGHT`` batches wait at once. On a real Starlette WebSocket (the
TestClient's ASGI transport), each batch's answer a future the test resolves."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from api.routes.readings_stream import Answers


class Shards:
    """The answers of the batches the socket has read, resolved by the test."""

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.pending: dict[int, asyncio.Future[str]] = {}
        self.read = threading.Semaphore(0)  # released once per batch read

    def resolve(self, n: int, text: str | None = None, error: Exception | None = None) -> None:
        def settle() -> None:
            future = self.pending[n]
            if error is not None:
                future.set_exception(error)
            else:
                future.set_result(text or json.dumps({"type": "ack", "seq": n}))

        assert self.loop is not None
        self.loop.call_soon_threadsafe(settle)


def app_with(shards: Shards) -> FastAPI:
    app = FastAPI()

    async def answer(n: int) -> str:
        return await shards.pending[n]

    @app.websocket("/ingest")
    async def ingest(websocket: WebSocket) -> None:
        shards.loop = asyncio.get_running_loop()
        await websocket.accept()
        answers = Answers(websocket)
        try:
            while True:
                await answers.room()
                message = await websocket.receive_text()
                n = json.loads(message)["seq"]
                shards.pending[n] = shards.loop.create_future()
                answers.add(answer(n))
                shards.read.release()
        except WebSocketDisconnect:
            pass
        finally:
            answers.stop()

    return app


def send(ws, shards: Shards, *seqs: int) -> None:
    for n in seqs:
        ws.send_text(json.dumps({"seq": n}))
        assert shards.read.acquire(timeout=5)


def test_answers_that_come_out_of_order_are_sent_in_the_batches_order() -> None:
    shards = Shards()
    with TestClient(app_with(shards)) as client, client.websocket_connect("/ingest") as ws:
        send(ws, shards, 1, 2, 3, 4)
        for n in (4, 2, 3, 1):  # the last batch's shard answers first
            shards.resolve(n)
        assert [json.loads(ws.receive_text())["seq"] for _ in range(4)] == [1, 2, 3, 4]
        send(ws, shards, 5)  # the socket goes on
        shards.resolve(5)
        assert json.loads(ws.receive_text())["seq"] == 5


def test_a_batch_that_fails_unforeseen_ends_the_socket_after_the_answers_before_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    shards = Shards()
    with TestClient(app_with(shards)) as client, client.websocket_connect("/ingest") as ws:
        send(ws, shards, 1, 2, 3)
        shards.resolve(3)
        shards.resolve(2, error=ValueError("unforeseen"))
        shards.resolve(1)
        assert json.loads(ws.receive_text())["seq"] == 1
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_text()  # batch 3's answer is never sent: the socket ended at batch 2
        assert closed.value.code == 1011
    assert "ingest stream failed" in caplog.text
    assert "unforeseen" in caplog.text


def test_no_more_than_max_in_flight_batches_wait_for_their_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(Answers, "MAX_IN_FLIGHT", 3)
    shards = Shards()
    with TestClient(app_with(shards)) as client, client.websocket_connect("/ingest") as ws:
        send(ws, shards, 1, 2, 3)
        ws.send_text(json.dumps({"seq": 4}))
        assert not shards.read.acquire(timeout=0.5)  # not read: three batches wait
        shards.resolve(1)
        assert json.loads(ws.receive_text())["seq"] == 1
        assert shards.read.acquire(timeout=5)  # room for one more: batch 4 read
        assert 4 in shards.pending
        for n in (2, 3, 4):
            shards.resolve(n)
        assert [json.loads(ws.receive_text())["seq"] for _ in range(3)] == [2, 3, 4]
