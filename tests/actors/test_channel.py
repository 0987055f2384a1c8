"""The ingest channel on real sockets: calls answered and matched by id (concurrent ones
out of order), a connection without the token refused before any call is taken, a shard
error and a malformed call answered as errors on a connection that stays usable, and a
broken connection failing every waiting call with ``ChannelClosed``; a channel listening
within the operator's port range, and a shard whose range is taken left without one."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import uuid
from collections.abc import AsyncIterator

import numpy as np
import pytest

from actors import channel as channel_module
from actors.channel import (
    MAGIC,
    Address,
    Channel,
    ChannelCallFailed,
    ChannelClosed,
    ChannelServer,
)
from actors.ingest_call import IngestAnswers, IngestCall, IngestOutcome
from actors.shard import DeviceShard, ShardConfig
from storage.embedded import free_port


def call_of(*sizes: int) -> IngestCall:
    return IngestCall.of(
        [
            (uuid.uuid4(), np.arange(n, dtype=np.int64), np.full(n, 100.0), None, False, None, None)
            for n in sizes
        ]
    )


class Shard:
    """Answers each batch ``ok`` with its size as accepted, after a delay of ``first
    size / 100`` s; ``gate`` holds every call while cleared."""

    def __init__(self) -> None:
        self.taken: list[IngestCall] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def __call__(self, call: IngestCall) -> IngestAnswers:
        self.taken.append(call)
        await self.gate.wait()
        sizes = call.sizes.tolist()
        if sizes and sizes[0] == 13:
            raise RuntimeError("the shard's own failure")
        await asyncio.sleep(sizes[0] / 100 if sizes else 0)
        return IngestAnswers.of([IngestOutcome("ok", accepted=n) for n in sizes])


@contextlib.asynccontextmanager
async def connected(
    token: bytes | None = None,
) -> AsyncIterator[tuple[Shard, ChannelServer, Address, Channel]]:
    """A shard's channel on a real socket and a router's connection to it (with ``token``
    instead of the channel's, if given); both closed at the end."""
    shard = Shard()
    server = ChannelServer(shard)
    address = await server.start("127.0.0.1")
    channel = await Channel.open(Address(address.host, address.port, token or address.token))
    try:
        yield shard, server, address, channel
    finally:
        channel.close()
        server.close()


async def test_calls_are_answered_and_matched_by_id_when_answered_out_of_order() -> None:
    async with connected() as (shard, server, address, channel):
        slow, fast = await asyncio.gather(channel.call(call_of(30, 2)), channel.call(call_of(1)))
        assert [o.accepted for o in slow.outcomes()] == [30, 2]
        assert [o.accepted for o in fast.outcomes()] == [1]
        assert server.calls == 2 and len(shard.taken) == 2
        again = await channel.call(call_of(0, 4))  # the same connection goes on
        assert [o.accepted for o in again.outcomes()] == [0, 4]
        assert (await server.start("127.0.0.1")).port == address.port  # opened once


async def test_a_connection_without_the_token_is_closed_before_any_call_is_taken() -> None:
    async with connected(token=bytes(32)) as (shard, server, _, channel):
        with pytest.raises(ChannelClosed):
            await asyncio.wait_for(channel.call(call_of(1)), 5)
        assert channel.closed
        assert shard.taken == [] and server.calls == 0


async def test_a_silent_connection_is_closed_after_the_hello_timeout(monkeypatch) -> None:
    monkeypatch.setattr(channel_module, "HELLO_TIMEOUT_S", 0.2)
    async with connected() as (_, _, address, _):
        reader, writer = await asyncio.open_connection(address.host, address.port)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the shard
        writer.close()


async def test_errors_are_answered_as_errors_and_the_connection_stays_usable() -> None:
    async with connected() as (_, _, address, channel):
        with pytest.raises(ChannelCallFailed, match="RuntimeError: the shard's own failure"):
            await channel.call(call_of(13))
        # A malformed call (sent by hand: the router's are well formed) is refused by name.
        reader, writer = await asyncio.open_connection(address.host, address.port)
        writer.write(MAGIC + address.token + channel_module._CALL.pack(3, 7) + b"abc")
        length, call_id, kind = channel_module._ANSWER.unpack(await reader.readexactly(13))
        text = (await reader.readexactly(length)).decode()
        assert (call_id, kind) == (7, channel_module.ERROR)
        assert text == "ValueError: the call ends inside its counts"
        writer.close()
        assert [o.accepted for o in (await channel.call(call_of(5))).outcomes()] == [5]


async def test_a_broken_connection_fails_every_waiting_call() -> None:
    async with connected() as (shard, server, _, channel):
        shard.gate.clear()
        waiting = [asyncio.ensure_future(channel.call(call_of(1))) for _ in range(3)]
        await asyncio.sleep(0.1)
        assert len(shard.taken) == 3
        server.close()  # as a shard does when it hands over; a process that ends does the same
        for call in waiting:
            with pytest.raises(ChannelClosed):
                await asyncio.wait_for(call, 5)
        assert channel.closed
        with pytest.raises(ChannelClosed):
            await channel.call(call_of(1))
        shard.gate.set()


def two_free_ports() -> tuple[int, socket.socket]:
    """A port ``p`` with ``p + 1`` free too, ``p`` held by the socket returned (taken)."""
    for _ in range(50):
        held = socket.socket()
        held.bind(("127.0.0.1", free_port()))
        port = held.getsockname()[1]
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port + 1))
            except OSError:
                held.close()
                continue
        return port, held
    raise RuntimeError("no two adjacent free ports on this machine")


async def test_a_channel_listens_within_its_port_range_passing_over_taken_ports() -> None:
    port, held = two_free_ports()
    with held:
        server = ChannelServer(Shard())
        address = await server.start("127.0.0.1", (port, port + 1))
        assert address.port == port + 1  # the only one of the range still free
        channel = await Channel.open(address)
        try:
            assert [o.accepted for o in (await channel.call(call_of(3))).outcomes()] == [3]
            other = ChannelServer(Shard())
            with pytest.raises(OSError, match=f"every port of {port}-{port + 1} is taken"):
                await other.start("127.0.0.1", (port, port + 1))
        finally:
            channel.close()
            server.close()


async def test_a_shard_whose_channel_ports_are_all_taken_has_no_channel_and_says_why(
    caplog,
) -> None:
    port, held = two_free_ports()
    with held:
        shard = DeviceShard(0, ShardConfig(database_url="", channel_ports=(port, port)))
        assert await shard.channel() is None
        assert f"ingest channel not opened: [Errno 98] every port of {port}-{port}" in caplog.text
