"""Streaming ingest: a device's batches over one WebSocket, through the running stack."""

from __future__ import annotations

import json
import socket
import time
import uuid
from datetime import datetime

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from cluster.logs import LogReader, stack_log_dirs
from storage.live import iso
from tests.e2e.test_sharing import follow
from tests.helpers import Account, minutes_ago, self_profile, series, sign_up, wait_until


def ingest_url(stack, device_id: str, token: str | None = None) -> str:
    url = stack.url.replace("http://", "ws://") + f"/v1/devices/{device_id}/readings/stream"
    return url + (f"?token={token}" if token else "")


def send(ws: ClientConnection, seq: int | None, readings: list[dict]) -> dict:
    ws.send(json.dumps({"seq": seq, "readings": readings}))
    return json.loads(ws.recv(timeout=30))


def closed_with(ws: ClientConnection) -> int | None:
    """The close code the server ends the socket with (after any last messages)."""
    with pytest.raises(ConnectionClosed) as closed:
        while True:
            ws.recv(timeout=15)
    return closed.value.rcvd.code if closed.value.rcvd else None


def stored(account: Account, device_id: str) -> list[dict]:
    r = account.client.get(f"/v1/devices/{device_id}/readings", headers=account.headers)
    assert r.status_code == 200, r.text
    return r.json()


def test_batches_are_acknowledged_in_order_once_stored(account: Account, stack) -> None:
    cgm = account.device("glucose")
    readings = series(minutes_ago(30), 6, 300, 120, -1.0)
    with connect(ingest_url(stack, cgm["id"], cgm["upload_token"])) as ws:
        ready = json.loads(ws.recv(timeout=30))
        assert ready == {"type": "ready", "device_id": cgm["id"], "max_batch_readings": 10_000}
        answers = [send(ws, seq, [r]) for seq, r in enumerate(readings[:4])]
        assert answers == [
            {"type": "ack", "seq": seq, "accepted": 1, "duplicates": 0} for seq in range(4)
        ]
        # A re-sent batch (after a lost answer) is never stored twice.
        again = send(ws, 9, readings[2:])
        assert again == {"type": "ack", "seq": 9, "accepted": 2, "duplicates": 2}
    rows = stored(account, cgm["id"])
    assert [r["value"] for r in rows] == [r["value"] for r in readings]
    assert rows[-1]["direction"] is not None


def closing_line(stack, request_id: str) -> tuple[dict, list[dict]]:
    """The stream's closing log line (waited for) and every record of its request id."""
    logs = LogReader(stack_log_dirs(stack.settings.run_dir, stack.settings.log_dir))
    mine: list[dict] = []

    def closed() -> dict | None:
        mine.extend(r for r in logs.new_records() if r.get("request_id") == request_id)
        return next((r for r in mine if r["message"] == "ingest stream closed"), None)

    return wait_until(closed, 30, "the stream's closing log line"), mine


def test_a_stream_is_logged_in_one_line_when_it_closes(account: Account, stack) -> None:
    """Its batches are counted in the stream's closing line (with the connection's request
    id), not logged one line each as HTTP uploads are."""
    cgm = account.device("glucose")
    readings = series(minutes_ago(20), 4, 300, 120, -1.0)
    request_id = f"stream-{uuid.uuid4().hex}"
    url = ingest_url(stack, cgm["id"], cgm["upload_token"])
    with connect(url, additional_headers={"X-Request-ID": request_id}) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        assert [send(ws, seq, [r])["type"] for seq, r in enumerate(readings)] == ["ack"] * 4
        assert send(ws, 4, readings[:2])["duplicates"] == 2
        assert send(ws, 5, [{"ts": readings[0]["ts"], "value": "high"}])["status"] == 422
    line, mine = closing_line(stack, request_id)
    counted = {k: line[k] for k in ("batches", "accepted", "duplicates", "refused")}
    assert counted == {"batches": 6, "accepted": 4, "duplicates": 2, "refused": 1}
    assert line["seconds"] >= 0
    assert not [r for r in mine if r["message"] == "upload"]


def test_a_stream_whose_device_drops_off_without_closing_ends_on_the_server(
    account: Account, stack
) -> None:
    """Serve does not watch the ingest WebSocket for a disconnect (``cluster.ingress``): the
    route reads its socket itself, so a connection cut without a close frame (a phone
    losing signal) still ends the stream on the server, its closing line logged."""
    cgm = account.device("glucose")
    request_id = f"dropped-{uuid.uuid4().hex}"
    url = ingest_url(stack, cgm["id"], cgm["upload_token"])
    with connect(url, additional_headers={"X-Request-ID": request_id}) as ws:
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        assert send(ws, 0, series(minutes_ago(2), 1, 60, 140, 0))["accepted"] == 1
        ws.socket.shutdown(socket.SHUT_RDWR)  # no close frame: the TCP connection just ends
    line, _ = closing_line(stack, request_id)
    assert (line["batches"], line["accepted"]) == (1, 1)


def test_a_user_with_manage_streams_and_the_live_stream_shows_it(account: Account, stack) -> None:
    cgm = account.device("glucose")
    token = account.headers["Authorization"].removeprefix("Bearer ")
    live_url = stack.url.replace("http://", "ws://") + f"/v1/stream?token={token}"
    with connect(live_url) as live, connect(ingest_url(stack, cgm["id"])) as ws:
        assert json.loads(live.recv(timeout=30))["type"] == "subscribed"
        ws.send(json.dumps({"type": "auth", "token": token}))
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        assert send(ws, 1, series(minutes_ago(1), 1, 60, 131, 0))["accepted"] == 1
        got = json.loads(live.recv(timeout=30))
        assert got["type"] == "reading" and got["device_id"] == cgm["id"] and got["value"] == 131


def test_bad_batches_are_refused_by_name_and_the_stream_goes_on(account: Account, stack) -> None:
    cgm = account.device("glucose")
    good = series(minutes_ago(20), 2, 300, 110, 0)
    with connect(ingest_url(stack, cgm["id"], cgm["upload_token"])) as ws:
        json.loads(ws.recv(timeout=30))
        out_of_range = send(ws, 1, [good[0], {"ts": good[1]["ts"], "value": 900}])
        assert out_of_range["type"] == "error" and out_of_range["status"] == 422
        assert out_of_range["seq"] == 1
        assert out_of_range["detail"][0]["loc"] == ["readings", 1, "value"]
        assert "900" in out_of_range["detail"][0]["msg"]

        ws.send('{"seq": 2, "readings": [{"ts": "yesterday", "value": 1}]}')
        bad_time = json.loads(ws.recv(timeout=30))
        assert bad_time["status"] == 422 and bad_time["seq"] == 2
        assert bad_time["detail"][0]["loc"] == ["readings", 0, "ts"]

        ws.send("not json")
        assert json.loads(ws.recv(timeout=30))["status"] == 422

        too_many = [{"ts": good[0]["ts"], "value": 100}] * 10_001
        big = send(ws, 3, too_many)
        assert big["status"] == 413 and "10001" in big["detail"]

        assert send(ws, 4, good) == {"type": "ack", "seq": 4, "accepted": 2, "duplicates": 0}
    assert [r["value"] for r in stored(account, cgm["id"])] == [110, 110]


def test_credentials_are_checked_at_connect(account: Account, stack) -> None:
    cgm, patch = account.device("glucose"), account.device("temperature")
    cases = [
        (ingest_url(stack, cgm["id"], "vdt_forged"), 4401),
        (ingest_url(stack, patch["id"], cgm["upload_token"]), 4403),
        (ingest_url(stack, sign_up(account.client).device()["id"], cgm["upload_token"]), 4403),
    ]
    stranger = sign_up(account.client).headers["Authorization"].removeprefix("Bearer ")
    cases.append((ingest_url(stack, cgm["id"], stranger), 4404))
    for url, code in cases:
        with connect(url) as ws:
            first = json.loads(ws.recv(timeout=30))
            assert first["type"] == "error" and first["status"] == code - 4000
            assert closed_with(ws) == code, url


def test_a_rotated_token_or_revoked_share_stops_the_stream(account: Account, stack) -> None:
    cgm = account.device("glucose")
    pid = self_profile(account)
    caregiver, share = follow(account, pid, ["manage"])
    caregiver_token = caregiver.headers["Authorization"].removeprefix("Bearer ")
    with (
        connect(ingest_url(stack, cgm["id"], cgm["upload_token"])) as device_ws,
        connect(ingest_url(stack, cgm["id"], caregiver_token)) as caregiver_ws,
    ):
        for ws in (device_ws, caregiver_ws):
            assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        rotate = f"/v1/devices/{cgm['id']}/upload-token"
        assert account.client.post(rotate, headers=account.headers).status_code == 200
        revoke = account.client.delete(
            f"/v1/profiles/{pid}/shares/{share['id']}", headers=account.headers
        )
        assert revoke.status_code in (200, 204), revoke.text
        time.sleep(1.5)  # the stack re-checks streaming credentials every second
        readings = series(minutes_ago(5), 1, 60, 150, 0)
        for ws, code in ((device_ws, 4401), (caregiver_ws, 4404)):
            ws.send(json.dumps({"seq": 1, "readings": readings}))
            refused = json.loads(ws.recv(timeout=30))
            assert refused["type"] == "error" and refused["status"] == code - 4000
            assert closed_with(ws) == code
    assert stored(account, cgm["id"]) == []


def test_binary_frames_carry_json_too(account: Account, stack) -> None:
    cgm = account.device("glucose")
    readings = series(minutes_ago(10), 2, 300, 99, 0)
    with connect(ingest_url(stack, cgm["id"], cgm["upload_token"])) as ws:
        json.loads(ws.recv(timeout=30))
        ws.send(json.dumps({"seq": 5, "readings": readings}).encode())
        assert json.loads(ws.recv(timeout=30)) == {
            "type": "ack",
            "seq": 5,
            "accepted": 2,
            "duplicates": 0,
        }
        ws.send(b"\xff\xfe")
        assert json.loads(ws.recv(timeout=30))["status"] == 422


def test_a_burst_sent_without_waiting_is_answered_complete_and_in_order(
    account: Account, stack
) -> None:
    cgm = account.device("glucose")
    token = account.headers["Authorization"].removeprefix("Bearer ")
    live_url = stack.url.replace("http://", "ws://") + f"/v1/stream?token={token}"
    readings = series(minutes_ago(60), 40, 60, 100, 0.5)
    with (
        connect(live_url) as live,
        connect(ingest_url(stack, cgm["id"], cgm["upload_token"])) as ws,
    ):
        assert json.loads(live.recv(timeout=30))["type"] == "subscribed"
        assert json.loads(ws.recv(timeout=30))["type"] == "ready"
        # 40 batches (more than a socket hands on at once), one of them invalid, all sent
        # before reading any answer.
        for seq, reading in enumerate(readings):
            batch = [{**reading, "value": 900}] if seq == 17 else [reading]
            ws.send(json.dumps({"seq": seq, "readings": batch}))
        answers = [json.loads(ws.recv(timeout=60)) for _ in readings]
        assert [a["seq"] for a in answers] == list(range(40))
        assert answers[17]["type"] == "error" and answers[17]["status"] == 422
        assert all(a == {"type": "ack", "seq": a["seq"], "accepted": 1, "duplicates": 0}
                   for i, a in enumerate(answers) if i != 17)  # fmt: skip
        # The live stream shows each commit's newest reading: in order, up to the last
        # (alert events of the same commits come in between).
        last = iso(datetime.fromisoformat(readings[-1]["ts"]).timestamp())
        shown: list[dict] = []
        while not shown or shown[-1]["ts"] != last:
            message = json.loads(live.recv(timeout=30))
            shown += [message] if message["type"] == "reading" else []
    expected = [r["value"] for i, r in enumerate(readings) if i != 17]
    assert [m["ts"] for m in shown] == sorted({m["ts"] for m in shown})  # no repeats
    assert {m["value"] for m in shown} <= set(expected)
    assert [r["value"] for r in stored(account, cgm["id"])] == expected
