"""The live stream over WebSocket and SSE, through the running stack's ingress."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.e2e.test_alerts import FALL, one_by_one, share
from tests.helpers import Account, minutes_ago, self_profile, sign_up


def ws_url(stack, **params: str) -> str:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    return stack.url.replace("http://", "ws://") + "/v1/stream" + (f"?{query}" if query else "")


def token(account: Account) -> str:
    return account.headers["Authorization"].removeprefix("Bearer ")


def collect(
    ws: ClientConnection, until: Callable[[list[dict]], bool], timeout_s: float = 30
) -> list[dict]:
    """Messages received until ``until(messages)`` holds or the time is up."""
    got: list[dict] = []
    deadline = time.monotonic() + timeout_s
    while not until(got) and (left := deadline - time.monotonic()) > 0:
        try:
            got.append(json.loads(ws.recv(timeout=left)))
        except TimeoutError:
            break
    return got


def alerts_in(messages: list[dict]) -> list[tuple[str, str]]:
    return [(m["rule"], m["event"]) for m in messages if m["type"] == "alert"]


def test_readings_and_alerts_reach_the_owner_and_the_alerts_follower_only(
    account: Account, db, stack
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    watcher = share(db, account, pid, ["alerts"])
    reader = share(db, account, pid, ["readings"])
    headers = {"Authorization": account.headers["Authorization"]}
    with (
        connect(ws_url(stack), additional_headers=headers) as owner_ws,
        connect(ws_url(stack, token=token(watcher))) as watcher_ws,
        connect(ws_url(stack)) as reader_ws,
    ):
        reader_ws.send(json.dumps({"type": "auth", "token": token(reader)}))
        for ws, (readings, alerts) in (
            (owner_ws, (True, True)),
            (watcher_ws, (False, True)),
            (reader_ws, (True, False)),
        ):
            hello = json.loads(ws.recv(timeout=10))
            assert hello["type"] == "subscribed", hello
            mine = {"profile_id": pid, "readings": readings, "alerts": alerts}
            assert mine in hello["profiles"], hello
        one_by_one(account, device["id"], minutes_ago(12), 30, FALL)

        def has_urgent_low(ms: list[dict]) -> bool:
            return ("urgent_low", "fired") in alerts_in(ms)

        owner = collect(owner_ws, has_urgent_low)
        watched = collect(watcher_ws, has_urgent_low)
        read = collect(reader_ws, lambda ms: len(ms) >= len(FALL), timeout_s=15)

    for got in (owner, watched):
        fired = [rule for rule, event in alerts_in(got) if event == "fired"]
        assert fired.index("urgent_low_soon") < fired.index("urgent_low"), fired
    urgent = next(m for m in owner if m["type"] == "alert" and m["rule"] == "urgent_low")
    assert urgent["severity"] == "urgent" and urgent["value"] <= 55
    assert urgent["received_at"] <= urgent["fired_at"]
    readings = [m for m in owner if m["type"] == "reading"]
    assert [m["value"] for m in readings] == FALL[: len(readings)]
    assert readings[-1]["direction"] == "DoubleDown" and readings[-1]["prediction_20"] < 55
    assert not [m for m in watched if m["type"] == "reading"]
    assert [m["value"] for m in read if m["type"] == "reading"] == FALL
    assert alerts_in(read) == []  # no `alerts` scope: no alert events


def test_a_revoked_follower_stream_is_closed(account: Account, db, stack) -> None:
    pid = self_profile(account)
    follower = share(db, account, pid, ["readings", "alerts"])
    with connect(ws_url(stack, token=token(follower), profile_id=pid)) as ws:
        assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        db.execute(
            "UPDATE shares SET state = 'revoked', ended_at = now() WHERE profile_id = %s", (pid,)
        )
        got = collect(ws, lambda ms: any(m["type"] == "closed" for m in ms))
        assert {"type": "revoked", "profile_id": pid} in got
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4403


def test_stream_refuses_bad_tokens_and_unrelated_profiles(account: Account, stack) -> None:
    with connect(ws_url(stack, token="not-a-token")) as ws:
        assert "invalid token" in json.loads(ws.recv(timeout=10))["detail"]
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    other = self_profile(account)
    someone = sign_up(account.client)
    with connect(ws_url(stack, token=token(someone), profile_id=other)) as ws:
        hello = json.loads(ws.recv(timeout=10))
        assert hello["profiles"] == [] and hello["refused"][0]["profile_id"] == other


def test_server_sent_events_carry_the_same_readings(account: Account, stack) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    params = {"token": token(account), "profile_id": pid}
    with (
        httpx.Client(base_url=stack.url, timeout=30) as c,
        c.stream(
            "GET", "/v1/stream/sse", params=params, headers={"Accept": "text/event-stream"}
        ) as r,
    ):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        lines = r.iter_lines()
        assert next(lines) == "event: subscribed"
        one_by_one(account, device["id"], minutes_ago(3), 60, [111])
        events = []
        for line in lines:
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
                if events[-1]["type"] == "reading":
                    break
    assert events[-1]["value"] == 111 and events[-1]["device_id"] == device["id"]


def test_server_sent_events_end_at_once_for_clients_not_asking_for_a_stream(
    account: Account, stack
) -> None:
    r = httpx.get(f"{stack.url}/v1/stream/sse", params={"token": token(account)}, timeout=30)
    assert r.status_code == 200 and r.text.startswith("event: subscribed\n")
    assert httpx.get(f"{stack.url}/v1/stream/sse", timeout=30).status_code == 401


def prefer(account: Account, profile_id: str, **body: object) -> None:
    r = account.client.put(
        f"/v1/profiles/{profile_id}/notification-preferences", json=body, headers=account.headers
    )
    assert r.status_code == 200, r.text


def test_alert_events_on_the_stream_follow_each_persons_preferences(
    account: Account, db, stack
) -> None:
    pid = self_profile(account)
    device = account.device("glucose")
    urgent_only = share(db, account, pid, ["readings", "alerts"])
    no_stream = share(db, account, pid, ["readings", "alerts"])
    prefer(urgent_only, pid, rules=["high"])  # low alerts are not theirs; urgent always is
    prefer(no_stream, pid, channels=["push", "email"])
    with (
        connect(ws_url(stack, token=token(urgent_only), profile_id=pid)) as urgent_ws,
        connect(ws_url(stack, token=token(no_stream), profile_id=pid)) as quiet_ws,
    ):
        for ws in (urgent_ws, quiet_ws):
            assert json.loads(ws.recv(timeout=10))["type"] == "subscribed"
        one_by_one(account, device["id"], minutes_ago(12), 30, FALL)

        def has_urgent_low(ms: list[dict]) -> bool:
            return ("urgent_low", "fired") in alerts_in(ms)

        urgent = collect(urgent_ws, has_urgent_low)
        muted = collect(quiet_ws, lambda ms: len(ms) >= len(FALL), timeout_s=15)
        fired = [rule for rule, event in alerts_in(urgent) if event == "fired"]
        assert fired == ["urgent_low_soon", "urgent_low"]  # no `low`: not among their rules
        assert alerts_in(muted) == []  # the stream is not among their channels
        assert [m["value"] for m in muted if m["type"] == "reading"] == FALL

        # A change of preferences applies to the open stream.
        prefer(no_stream, pid, channels=["stream"])
        time.sleep(1)  # the change reaches the replica's LISTEN
        one_by_one(account, account.device("glucose")["id"], minutes_ago(12), 30, FALL)
        now_shown = collect(quiet_ws, has_urgent_low)
        assert ("low", "fired") in alerts_in(now_shown), alerts_in(now_shown)
