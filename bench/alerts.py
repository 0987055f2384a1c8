"""Alert latency benchmark: from a reading's receipt to the alert on a WebSocket.

Starts the stack on a throwaway PostgreSQL unless ``--url`` names a running Vigil.
Registers ``--devices`` CGMs, each on its own (dependent) profile, 100 per account;
``--alerting-share`` of them (10 %) read 45 mg/dL (low and urgent low, re-alerting every
minute; with ``--alert-cycle N`` low for N readings then normal for N, so that every low
spell fires its alerts anew), the rest a normal wave.
Each device sends one reading per second over its ingest WebSocket and waits for the
commit's answer (``--transport http``: one POST per reading instead). ``--subscribers``
WebSocket clients each follow an equal share of the profiles. Alerts and uploads of the
first ``--warmup`` seconds (devices loading into their shards) are counted but not measured.
For every alert event arriving on a WebSocket, the script records the delay from the
reading's receipt by Vigil (``received_at``, stamped by the API) and from the moment the
simulator sent it. At the end it compares, per alert, the notifications Vigil stored (first
and repeats) with those the subscribers received: ``lost`` must be 0. Prints counts,
p50/p99, the CPU milliseconds per acknowledged reading of each component over the measured
part (from ``/proc``, see ``bench.cpu``; ``vigil_cpu_ms_per_reading`` leaves the load
generator out; only for a stack it started, whose processes are its descendants) beside
the floor of the replicas' share (``bench.edge``, measured under the same load before the
stack starts and after it stops) and Vigil's figure in units of that floor
(``vigil_over_edge_floor``: the machine's speed of the minute, which moves every
component's figure, taken out), the alert events of that part and, last,
``alert_p99_ms: N``. The CPU of an alert: the same run with ``--alerting-share 0`` (no alert
fires, the same readings) beside one with ``--alerting-share 1 --alert-cycle 5``; see
docs/capacity.md.

    .venv/bin/python -m bench.alerts [--seconds 100] [--devices 1000] [--subscribers 200]
    .venv/bin/python -m bench.alerts --url URL --database-url POSTGRES_URL
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import time
from collections import Counter
from datetime import UTC, datetime

import aiohttp
import numpy as np

from bench.cpu import (
    cpu_split,
    database_commits,
    machine_yardstick_ms,
    postmaster_pid,
    print_cpu,
    snapshot,
)
from bench.edge import edge_floor
from bench.stack import sign_up, vigil_stack

PER_ACCOUNT = 100


async def register(
    session: aiohttp.ClientSession, url: str, devices: int, alerting_share: float = 0.1
) -> list[dict]:
    """One dict per device: id, profile, token, alerting (the first of every
    ``1 / alerting_share`` devices; none at 0)."""
    every = round(1 / alerting_share) if alerting_share > 0 else 0
    stamp = int(time.time())
    out: list[dict] = []
    for u in range(0, devices, PER_ACCOUNT):
        email = f"alertbench-{stamp}-{u}@example.com"
        token = await sign_up(session, url, email, "benchmark passphrase")
        headers = {"Authorization": f"Bearer {token}"}

        async def one(d: int, u: int = u, headers=headers, token=token) -> dict:
            n = u + d
            async with session.post(
                f"{url}/v1/profiles", json={"name": f"P{n}"}, headers=headers
            ) as r:
                r.raise_for_status()
                profile = (await r.json())["id"]
            alerting = every > 0 and n % every == 0
            if alerting:
                rules = {"glucose": [{"kind": "urgent_low", "realert_min": 1}]}
                async with session.put(
                    f"{url}/v1/profiles/{profile}/alert-settings", json=rules, headers=headers
                ) as r:
                    r.raise_for_status()
            body = {"kind": "glucose", "serial": f"A{n}", "profile_id": profile, "interval_s": 1}
            async with session.post(f"{url}/v1/devices", json=body, headers=headers) as r:
                r.raise_for_status()
                device = await r.json()
            return {
                "n": n,
                "id": device["id"],
                "upload_token": device["upload_token"],
                "profile": profile,
                "token": token,
                "headers": headers,
                "alerting": alerting,
            }

        out += await asyncio.gather(*(one(d) for d in range(min(PER_ACCOUNT, devices - u))))
    return out


async def subscriber(
    session: aiohttp.ClientSession,
    url: str,
    token: str,
    profiles: list[str],
    sent_at: dict[tuple[str, str], float],
    delays: dict[str, list[float]],
    ready: asyncio.Event,
    counts: dict[str, float],
    on_ws: Counter[str],
) -> None:
    """Reads its stream until cancelled (after the devices stop and the last alerts had
    time to arrive: an alert still on its way when the devices stop is late, not lost)."""
    query = "&".join(f"profile_id={p}" for p in profiles)
    ws_url = url.replace("http://", "ws://") + f"/v1/stream?token={token}&{query}"
    async with session.ws_connect(ws_url, heartbeat=None, max_msg_size=0) as ws:
        hello = json.loads((await ws.receive()).data)
        assert hello["type"] == "subscribed", hello
        counts["subscribed"] += 1
        if counts["subscribed"] == counts["subscribers"]:
            ready.set()
        while True:
            msg = await ws.receive()
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            now = time.time()
            m = json.loads(msg.data)
            if m["type"] == "reading":
                counts["readings"] += 1
            elif m["type"] == "alert" and m["event"] in ("fired", "repeated"):
                counts["alerts"] += 1
                on_ws[m["alert_id"]] += 1
                received = datetime.fromisoformat(m["received_at"]).timestamp()
                if received < counts["measure_from"]:
                    continue  # warm-up: devices loading into their shards
                counts["measured"] += 1
                delays["receipt"].append(now - received)
                delays["fire"].append(datetime.fromisoformat(m["fired_at"]).timestamp() - received)
                sent = sent_at.get((m["device_id"], m["reading_ts"]))
                if sent is not None:
                    delays["sent"].append(now - sent)


async def run(
    url: str,
    seconds: float,
    devices: int,
    subscribers: int,
    warmup: float,
    transport: str,
    postmaster: int | None = None,
    database_url: str | None = None,
    alerting_share: float = 0.1,
    alert_cycle: int = 0,
) -> dict:
    connector = aiohttp.TCPConnector(limit=256)
    timeout = aiohttp.ClientTimeout(total=120)
    ws_base = url.replace("http://", "ws://")
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as session,
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as ws_session,
    ):
        fleet = await register(session, url, devices, alerting_share)
        sent_at: dict[tuple[str, str], float] = {}
        delays: dict[str, list[float]] = {"receipt": [], "sent": [], "upload": [], "fire": []}
        counts: dict[str, float] = {"subscribers": subscribers, "subscribed": 0, "readings": 0}
        counts["alerts"] = 0
        counts |= {"uploads": 0, "upload_errors": 0, "late_ticks": 0, "measured": 0}
        counts["measure_from"] = time.time() + 3600
        on_ws: Counter[str] = Counter()
        ready, stop = asyncio.Event(), asyncio.Event()
        per_sub = math.ceil(len(fleet) / subscribers)
        subs = []
        for s in range(subscribers):
            mine = fleet[s * per_sub : (s + 1) * per_sub]
            if not mine:
                counts["subscribers"] -= 1
                continue
            subs.append(
                asyncio.create_task(
                    subscriber(
                        ws_session,
                        url,
                        mine[0]["token"],
                        [d["profile"] for d in mine],
                        sent_at,
                        delays,
                        ready,
                        counts,
                        on_ws,
                    )
                )
            )
        await asyncio.wait_for(ready.wait(), 120)

        def reading(d: dict, k: int) -> dict:
            ts = datetime.fromtimestamp(int(time.time() * 1000) / 1000, UTC).isoformat()
            low = d["alerting"] and (alert_cycle == 0 or (k // alert_cycle) % 2 == 0)
            value = 45.0 if low else 120 + 30 * math.sin((d["n"] + k) / 50)
            sent_at[(d["id"], ts)] = time.time()
            return {"ts": ts, "value": round(value, 1)}

        def answered(status_ok: bool, t0: float) -> None:
            if t0 >= counts["measure_from"]:
                delays["upload"].append(time.time() - t0)
            counts["uploads" if status_ok else "upload_errors"] += 1

        async def over_http(d: dict, k: int) -> None:
            t0 = time.time()
            async with session.post(
                f"{url}/v1/devices/{d['id']}/readings",
                json={"readings": [reading(d, k)]},
                headers=d["headers"],
            ) as r:
                await r.read()
                answered(r.status == 200, t0)

        async def device(d: dict) -> None:
            # Spread the devices over the second, then one reading per second each.
            await asyncio.sleep((d["n"] % 1000) / 1000)
            ws = None
            if transport == "ws":
                ws = await ws_session.ws_connect(
                    f"{ws_base}/v1/devices/{d['id']}/readings/stream?token={d['upload_token']}",
                    heartbeat=None,
                )
                ready = json.loads((await ws.receive()).data)
                assert ready["type"] == "ready", ready
            k = 0
            began = time.time()
            try:
                while not stop.is_set():
                    if time.time() - (began + k) > 1.0:
                        counts["late_ticks"] += 1
                    try:
                        if ws is None:
                            await over_http(d, k)
                        else:
                            t0 = time.time()
                            await ws.send_str(json.dumps({"seq": k, "readings": [reading(d, k)]}))
                            answer = json.loads((await ws.receive()).data)
                            answered(answer["type"] == "ack", t0)
                    except (aiohttp.ClientError, TypeError, ValueError):
                        counts["upload_errors"] += 1
                    k += 1
                    await asyncio.sleep(max(0.0, began + k - time.time()))
            finally:
                if ws is not None:
                    await ws.close()

        began = time.perf_counter()
        counts["measure_from"] = time.time() + warmup
        streams = [asyncio.create_task(device(d)) for d in fleet]
        await asyncio.sleep(min(warmup, seconds))
        cpu_before, uploads_before = snapshot(postmaster), counts["uploads"]
        commits_before = database_commits(database_url) if database_url else 0
        await asyncio.sleep(max(0.0, seconds - warmup))
        cpu = cpu_split(cpu_before, snapshot(postmaster))
        commits = database_commits(database_url) - commits_before if database_url else None
        measured_readings = counts["uploads"] - uploads_before
        stop.set()
        await asyncio.gather(*streams, return_exceptions=True)
        elapsed = time.perf_counter() - began
        await asyncio.sleep(2)  # the last alerts in flight
        stored = await stored_events(session, url, fleet)
        # Late is not lost: a saturated stack may still be delivering (its delays are in
        # the percentiles); an alert counts as lost if it has not come 20 s after the end.
        for _ in range(40):
            if not _missing(stored, on_ws):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(1)  # anything committed just before the count
        for t in subs:
            t.cancel()
        await asyncio.gather(*subs, return_exceptions=True)
    lost = _missing(stored, on_ws)
    counts |= {"stored_events": sum(stored.values()), "lost": lost}
    return {
        "elapsed": elapsed,
        "counts": counts,
        "delays": delays,
        "cpu_s": cpu,
        "measured_readings": measured_readings,
        "commits": commits,
    }


def _missing(stored: Counter, on_ws: Counter) -> int:
    """Notifications Vigil recorded that no subscriber received."""
    return sum(max(0, n - on_ws[a]) for a, n in stored.items())


async def stored_events(session: aiohttp.ClientSession, url: str, fleet: list[dict]) -> Counter:
    """Per alert, how many notifications Vigil recorded (the first and each repeat): what
    the subscribers must have received."""
    events: Counter[str] = Counter()
    for headers in {d["token"]: d["headers"] for d in fleet}.values():
        async with session.get(f"{url}/v1/alerts?limit=1000", headers=headers) as r:
            r.raise_for_status()
            for a in await r.json():
                events[a["id"]] = len(a["notified_at"])
    return events


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(np.array(values) * 1000, q)) if values else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a running Vigil; default: start one")
    parser.add_argument(
        "--database-url", help="with --url: its database on this machine, for the CPU split"
    )
    parser.add_argument("--seconds", type=float, default=100)
    parser.add_argument(
        "--warmup", type=float, default=20, help="alerts of the first seconds are not measured"
    )
    parser.add_argument("--devices", type=int, default=1000)
    parser.add_argument("--subscribers", type=int, default=200)
    parser.add_argument(
        "--alerting-share",
        type=float,
        default=0.1,
        help="share of devices that read low (0: no alert fires)",
    )
    parser.add_argument(
        "--alert-cycle",
        type=int,
        default=0,
        help="alerting devices read low for N readings, then normal for N (each low spell"
        " fires its alerts anew); 0: low throughout (the alert repeats every minute)",
    )
    parser.add_argument("--shards", type=int, default=2)
    parser.add_argument("--replicas", type=int, default=2)
    parser.add_argument(
        "--transport",
        choices=("ws", "http"),
        default="ws",
        help="devices stream over the ingest WebSocket, or POST each reading",
    )
    args = parser.parse_args()

    # The replicas' yardstick: the bare WebSocket edge under the same load, before the stack
    # starts and again after it stops (the machine's speed drifts within minutes).
    edge = edge_floor(args.devices, args.subscribers) if args.transport == "ws" else None
    stack = vigil_stack(args.url, args.database_url, shards=args.shards, replicas=args.replicas)
    with stack as (url, database_url):
        own_stack = args.url is None  # its processes are this one's: where the CPU went
        postmaster = postmaster_pid(database_url) if own_stack and database_url else None
        yardstick_before = machine_yardstick_ms()  # the stack up and idle
        os.nice(max(0, 15 - os.nice(0)))
        result = asyncio.run(
            run(
                url,
                args.seconds,
                args.devices,
                args.subscribers,
                args.warmup,
                args.transport,
                postmaster,
                database_url,
                args.alerting_share,
                args.alert_cycle,
            )
        )
        yardstick_after = machine_yardstick_ms()
    # (before, after) CPU ms per reading of the bare edge, with the WebSocket transport
    floors = None
    if edge is not None:
        after = edge_floor(args.devices, args.subscribers)
        floors = (edge["cpu_ms_per_reading"], after["cpu_ms_per_reading"])
    c, d = result["counts"], result["delays"]
    print(
        f"devices={args.devices} alerting_share={args.alerting_share}"
        f" alert_cycle={args.alert_cycle} subscribers={c['subscribed']}"
        f" shards={args.shards} replicas={args.replicas} transport={args.transport}"
        f" seconds={result['elapsed']:.1f}"
    )
    print(
        f"uploads={c['uploads']} ({c['uploads'] / result['elapsed']:.0f}/s)"
        f" upload_errors={c['upload_errors']} late_ticks={c['late_ticks']}"
        f" readings_on_ws={c['readings']} alerts_on_ws={c['alerts']} measured={c['measured']}"
    )
    print(
        f"alert_notifications_stored={c['stored_events']} received_on_ws={c['alerts']}"
        f" lost={c['lost']}"
    )
    print(f"upload_p50_ms: {pct(d['upload'], 50):.1f} upload_p99_ms: {pct(d['upload'], 99):.1f}")
    print(f"receipt_to_fired_p50_ms: {pct(d['fire'], 50):.1f} p99: {pct(d['fire'], 99):.1f}")
    print(f"from_send_p50_ms: {pct(d['sent'], 50):.1f}")
    print(f"from_send_p99_ms: {pct(d['sent'], 99):.1f}")
    vigil = print_cpu(result["cpu_s"], result["measured_readings"]) if own_stack else None
    if result["commits"]:  # the database's own count, over the CPU window
        print(
            f"database_commits: {result['commits']}"
            f" readings_per_commit: {result['measured_readings'] / result['commits']:.1f}"
        )
    if floors is not None:
        print(
            f"edge_floor_cpu_ms_per_reading: {floors[0]:.3f} before / {floors[1]:.3f} after"
            " (bench.edge: a bare FastAPI WebSocket edge under the same load, before the stack"
            " started and after it stopped: the floor for the Serve replicas' figure)"
        )
        if vigil is not None:
            print(
                f"vigil_over_edge_floor: {vigil / (sum(floors) / 2):.2f} (Vigil's CPU"
                " per reading in units of the bare edge's, the mean of the two: the figure with"
                " the machine's speed of the minute taken out)"
            )
    print(
        f"machine_yardstick_ms: {yardstick_before:.0f} before / {yardstick_after:.0f} after"
        " (a fixed piece of Python work, the stack idle: the machine's speed in this run)"
    )
    print(f"alert_events_measured={c['measured']}")  # fired and repeated, in the CPU window
    print(f"alert_p50_ms: {pct(d['receipt'], 50):.1f}")
    print(f"alert_p99_ms: {pct(d['receipt'], 99):.0f}")
    if c["lost"]:
        raise SystemExit(1)  # an alert Vigil recorded as notified never reached its stream


if __name__ == "__main__":
    main()
