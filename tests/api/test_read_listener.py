"""The read listener of a replica (``api.read_listener``) on real sockets and a real uvicorn:
it finds Serve's listener among the process's own sockets, listens beside it, answers with a
request id in one write per response, counts every answer, and on stop lets a request in
flight finish while refusing new connections."""

from __future__ import annotations

import asyncio
import socket

import httpx
import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from api import read_listener
from api.read_listener import ReadListener, enabled, port_offset, serve_listener
from api.request_id import RequestIdMiddleware
from storage.embedded import free_port_block


def _listen(host: str, port: int) -> socket.socket:
    s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    s.bind((host, port))
    s.listen()
    return s


@pytest.fixture
def serve_range(monkeypatch: pytest.MonkeyPatch) -> int:
    """A Serve replica port range of one free port (the read listener's is the next)."""
    first = free_port_block(2)
    monkeypatch.setenv(read_listener.RANGE_ENV[0], str(first))
    monkeypatch.setenv(read_listener.RANGE_ENV[1], str(first))
    return first


def test_the_offset_is_the_width_of_serves_range(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in read_listener.RANGE_ENV:
        monkeypatch.delenv(name, raising=False)
    assert port_offset() == 1001  # Serve's default 30000-31000
    monkeypatch.setenv(read_listener.RANGE_ENV[0], "20000")
    monkeypatch.setenv(read_listener.RANGE_ENV[1], "20063")
    assert port_offset() == 64


def test_on_with_serves_haproxy_unless_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(read_listener.ENV, raising=False)
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "0")
    assert not enabled()
    monkeypatch.setenv("RAY_SERVE_ENABLE_HA_PROXY", "1")
    assert enabled()
    monkeypatch.setenv(read_listener.ENV, "0")
    assert not enabled()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_serves_listener_is_found_among_this_processes_sockets(serve_range: int, host: str) -> None:
    assert serve_listener() is None
    bound = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    bound.bind((host, serve_range))  # bound, not listening: not a listener
    try:
        assert serve_listener() is None
    finally:
        bound.close()
    elsewhere = _listen(host, serve_range + 1)  # listening, outside the range
    with _listen(host, serve_range), elsewhere:
        assert serve_listener() == (host, serve_range)
    assert serve_listener() is None


async def test_it_listens_beside_serve_and_drains_on_stop(serve_range: int) -> None:
    release = asyncio.Event()
    entered = asyncio.Event()

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == "/slow":
            entered.set()
            await release.wait()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    with _listen("127.0.0.1", serve_range):
        # As in a replica: the app's own request id middleware, set for Serve (respond=False).
        listener = ReadListener(RequestIdMiddleware(app, respond=False))
        listener.start()
        for _ in range(500):
            if listener.port is not None:
                break
            await asyncio.sleep(0.01)
        assert listener.port == serve_range + 1
        url = f"http://127.0.0.1:{listener.port}"
        async with httpx.AsyncClient(base_url=url, timeout=10) as client:
            r = await client.get("/fast", headers={"X-Request-ID": "abcdefgh-1"})
            assert (r.status_code, r.text) == (200, "/fast")
            assert r.headers.get_list("x-request-id") == ["abcdefgh-1"]
            made = (await client.get("/fast")).headers.get_list("x-request-id")
            assert len(made) == 1 and len(made[0]) == 32

            slow = asyncio.create_task(client.get("/slow"))
            await asyncio.wait_for(entered.wait(), 10)
            stopping = asyncio.create_task(listener.stop())
            await asyncio.sleep(0.3)
            assert not stopping.done()  # waits for the request in flight
            async with httpx.AsyncClient(base_url=url) as late:
                with pytest.raises(httpx.ConnectError):
                    await late.get("/fast")
            release.set()
            answered = await asyncio.wait_for(slow, 10)
            assert (answered.status_code, answered.text) == (200, "/slow")
            await asyncio.wait_for(stopping, 10)


async def test_without_serves_listener_it_gives_up_and_stops_cleanly(
    serve_range: int, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(read_listener, "FIND_FOR_S", 0.2)
    listener = ReadListener(lambda *a: None)
    listener.start()
    await asyncio.sleep(0.5)
    assert listener.port is None
    assert "no Serve listener" in caplog.text
    await listener.stop()


async def test_a_taken_port_is_logged_and_reads_stay_with_serve(
    serve_range: int, caplog: pytest.LogCaptureFixture
) -> None:
    with _listen("127.0.0.1", serve_range), _listen("127.0.0.1", serve_range + 1):
        listener = ReadListener(lambda *a: None)
        listener.start()
        await asyncio.sleep(0.5)
        assert listener.port is None
        assert f"127.0.0.1:{serve_range + 1}" in caplog.text
        await listener.stop()


async def _started(listener: ReadListener) -> str:
    listener.start()
    for _ in range(500):
        if listener.port is not None:
            return f"http://127.0.0.1:{listener.port}"
        await asyncio.sleep(0.01)
    raise AssertionError("the read listener did not start")


async def _echo(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["path"] == "/boom":
        raise RuntimeError("boom")
    status, body = 404 if "missing" in scope["path"] else 200, scope["path"].encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _Counting:
    """A real transport, its writes recorded."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> object:
        return getattr(self._transport, name)


@pytest.mark.parametrize("coalesced", [True, False])
async def test_a_response_goes_out_in_one_write(
    serve_range: int, monkeypatch: pytest.MonkeyPatch, coalesced: bool
) -> None:
    writes: list[bytes] = []
    if coalesced:
        wrap = read_listener._Coalescing.__init__
        monkeypatch.setattr(
            read_listener._Coalescing, "__init__", lambda s, t: wrap(s, _Counting(t, writes))
        )
    else:  # uvicorn's own protocol, for comparison: head and body in two writes
        monkeypatch.setattr(
            read_listener._OneWrite,
            "connection_made",
            lambda s, t: HttpToolsProtocol.connection_made(s, _Counting(t, writes)),
        )
    with _listen("127.0.0.1", serve_range):
        listener = ReadListener(_echo)
        async with httpx.AsyncClient(base_url=await _started(listener), timeout=10) as client:
            for path in ("/first", "/second"):  # the same connection, kept alive
                writes.clear()
                r = await client.get(path)
                assert (r.status_code, r.text) == (200, path)
                if coalesced:
                    assert len(writes) == 1, writes
                    assert writes[0].startswith(b"HTTP/1.1 200") and writes[0].endswith(
                        path.encode()
                    )
                else:
                    assert len(writes) == 2, writes
        await listener.stop()


def test_the_route_label_is_a_template_the_health_check_or_other() -> None:
    device = "0b7c4a52-3f7e-4b8e-9a55-3c1f0e6f2d10"
    assert (
        read_listener.route_of(f"/v1/devices/{device}/latest") == "/v1/devices/{device_id}/latest"
    )
    assert (
        read_listener.route_of(f"/v1/devices/{device}/readings")
        == "/v1/devices/{device_id}/readings"
    )
    assert read_listener.route_of("/healthz") == "/healthz"
    for other in (f"/v1/devices/{device}/readings/stream", "/v1/profiles", "/", "/x/y/z/latest"):
        assert read_listener.route_of(other) == "other"


async def test_every_answer_is_counted_by_route_and_status(
    serve_range: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[tuple[str, str, str, float]] = []

    def observe(name: str, seconds: float, **tags: str) -> None:
        seen.append((name, tags["route"], tags["status_code"], seconds))

    monkeypatch.setattr(read_listener.metrics, "observe", observe)
    device = "0b7c4a52-3f7e-4b8e-9a55-3c1f0e6f2d10"
    with _listen("127.0.0.1", serve_range):
        listener = ReadListener(_echo)
        async with httpx.AsyncClient(base_url=await _started(listener), timeout=10) as client:
            assert (await client.get(f"/v1/devices/{device}/latest")).status_code == 200
            assert (await client.get(f"/v1/devices/{device}/readings")).status_code == 200
            assert (await client.get("/v1/devices/missing/latest")).status_code == 404
            assert (await client.get("/boom")).status_code == 500  # uvicorn's own 500
        await listener.stop()
    assert [s[:3] for s in seen] == [
        ("vigil_read_request_seconds", "/v1/devices/{device_id}/latest", "200"),
        ("vigil_read_request_seconds", "/v1/devices/{device_id}/readings", "200"),
        ("vigil_read_request_seconds", "/v1/devices/{device_id}/latest", "404"),
        ("vigil_read_request_seconds", "other", "500"),
    ]
    assert all(0 <= s[3] < 10 for s in seen)
