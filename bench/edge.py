"""The floor of a Python WebSocket edge: ``bench.alerts``' yardstick for the replicas' CPU.

What a reading costs the Serve replicas is mostly the edge itself: a frame received, an
answer sent, a frame sent to the subscriber following the device. This measures that much
and nothing else on the same machine in the same run: a FastAPI app (:data:`app`) on
uvicorn with the settings Serve gives its replicas (uvicorn's defaults: uvloop, httptools,
websockets-sansio), one server per core, each taking a stream's JSON batch on
``/ingest/{device}/{subscriber}``, answering an ack, and sending the reading as one JSON
frame to that subscriber's socket (``/watch/{subscriber}``) on the same server. No HAProxy,
no Ray, no database, no checks. The load is ``bench.alerts``': ``--devices`` streams of one
reading per second each, each waiting for its ack, and ``--subscribers`` each following an
equal share of them. Prints the servers' CPU milliseconds per acknowledged reading (from
``/proc``) as ``edge_floor_cpu_ms_per_reading: X``.

    .venv/bin/python -m bench.edge [--devices 2000] [--subscribers 200] [--seconds 30]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import math
import os
import subprocess
import time
from datetime import UTC, datetime

import aiohttp
import orjson
from fastapi import FastAPI, WebSocket, WebSocketDisconnect

from bench.cpu import processes
from bench.stack import uvicorn_server
from storage.embedded import free_port

app = FastAPI()
_watchers: dict[int, asyncio.Queue[str]] = {}


@app.get("/")
async def _up() -> dict:
    return {}


@app.websocket("/watch/{sub}")
async def _watch(websocket: WebSocket, sub: int) -> None:
    await websocket.accept()
    queue: asyncio.Queue[str] = asyncio.Queue()
    _watchers[sub] = queue
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            await websocket.send_text(await queue.get())


@app.websocket("/ingest/{device}/{sub}")
async def _ingest(websocket: WebSocket, device: int, sub: int) -> None:
    await websocket.accept()
    with contextlib.suppress(WebSocketDisconnect):
        while True:
            batch = orjson.loads(await websocket.receive_text())
            reading = batch["readings"][-1]
            ack = {"type": "ack", "seq": batch["seq"], "accepted": 1, "duplicates": 0}
            await websocket.send_text(orjson.dumps(ack).decode())
            queue = _watchers.get(sub)
            if queue is not None:
                frame = {"type": "reading", "device_id": device, **reading}
                queue.put_nowait(orjson.dumps(frame).decode())


async def _load(ports: list[int], devices: int, subscribers: int, warmup: float, seconds: float,
                pids: list[int]) -> tuple[int, float]:  # fmt: skip
    """Acknowledged readings and the servers' CPU seconds over the measured window."""
    per_sub = math.ceil(devices / subscribers)
    stop = asyncio.Event()
    acked = [0]

    async def subscriber(session: aiohttp.ClientSession, sub: int) -> None:
        port = ports[sub % len(ports)]
        async with session.ws_connect(f"ws://127.0.0.1:{port}/watch/{sub}", heartbeat=None) as ws:
            while not stop.is_set() and (await ws.receive()).type == aiohttp.WSMsgType.TEXT:
                pass

    async def device(session: aiohttp.ClientSession, n: int) -> None:
        sub = n // per_sub
        url = f"ws://127.0.0.1:{ports[sub % len(ports)]}/ingest/{n}/{sub}"
        async with session.ws_connect(url, heartbeat=None) as ws:
            await asyncio.sleep((n % 1000) / 1000)  # spread over the second, as bench.alerts
            began, k = time.time(), 0
            while not stop.is_set():
                ts = datetime.now(UTC).isoformat()
                reading = {"ts": ts, "value": 100 + k % 50}
                await ws.send_str(orjson.dumps({"seq": k, "readings": [reading]}).decode())
                await ws.receive()
                acked[0] += 1
                k += 1
                await asyncio.sleep(max(0.0, began + k - time.time()))

    def cpu_s() -> float:
        now = processes()
        return sum(now[p].cpu_s for p in pids)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        subs = [asyncio.create_task(subscriber(session, s)) for s in range(subscribers)]
        await asyncio.sleep(1)
        streams = [asyncio.create_task(device(session, n)) for n in range(devices)]
        await asyncio.sleep(warmup)
        acked_before, cpu_before = acked[0], cpu_s()
        await asyncio.sleep(seconds)
        measured, cpu = acked[0] - acked_before, cpu_s() - cpu_before
        stop.set()
        for task in (*streams, *subs):
            task.cancel()
        await asyncio.wait([*streams, *subs], timeout=15)
    return measured, cpu


def edge_floor(devices: int, subscribers: int, seconds: float = 20, warmup: float = 10) -> dict:
    """The edge's CPU ms per acknowledged reading under ``bench.alerts``' load, and its rate."""
    cores = os.cpu_count() or 1
    ports: list[int] = []
    for _ in range(cores):
        ports.append(free_port(avoid=ports))
    servers: list[subprocess.Popen] = []
    try:
        for port in ports:
            servers.append(uvicorn_server("bench.edge:app", port, "/"))
        measured, cpu = asyncio.run(
            _load(ports, devices, subscribers, warmup, seconds, [s.pid for s in servers])
        )
    finally:
        for s in servers:
            s.terminate()
        for s in servers:
            try:
                s.wait(15)
            except subprocess.TimeoutExpired:  # still closing sockets: the figure is taken
                s.kill()
                s.wait()
    return {"per_s": measured / seconds, "cpu_ms_per_reading": 1000 * cpu / max(1, measured)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, default=2000)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30)
    args = parser.parse_args()
    floor = edge_floor(args.devices, args.subscribers, args.seconds)
    print(f"devices={args.devices} subscribers={args.subscribers} acked={floor['per_s']:.0f}/s")
    print(f"edge_floor_cpu_ms_per_reading: {floor['cpu_ms_per_reading']:.3f}")


if __name__ == "__main__":
    main()
