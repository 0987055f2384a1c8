"""The ingest channel: a router's ``ingest_packed`` calls to a shard on a socket of their own.

A Ray actor call costs about 2 ms of CPU in each of the two processes on this machine kind,
whatever it carries: it wakes several threads on both sides (docs/benchmarks.md, 2026-12-02
evening). The same call on a TCP connection between the replica's event loop and the
shard's costs a fraction of that (2026-12-03 afternoon). At 2,000 devices a second,
2 replicas, 2 shards and 10 commits a second make 40 ingest calls a second.

Ray still hosts, places, restarts and probes the shards and carries every other call. A
shard opens its channel on its node's address when first asked (``DeviceShard.channel``, a
Ray call: only a process that may call the shard learns where it listens) and answers on a
connection only after its first bytes are the channel's random token. A call's frame is its
length and id, then ``IngestCall.to_bytes``; an answer's is its length, the call's id and a
kind (the answers, or an error's text). Nothing is pickled. When the connection breaks,
every call waiting on it fails with :class:`ChannelClosed`; the router tells their callers to
retry, as when a shard stops answering, and opens a new channel to the shard's next
incarnation.
"""

from __future__ import annotations

import asyncio
import errno
import hmac
import logging
import secrets
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from actors.ingest_call import IngestAnswers, IngestCall

log = logging.getLogger(__name__)

MAGIC = b"VGC1"  # the protocol's first version
TOKEN_BYTES = 32
HELLO_TIMEOUT_S = 5.0  # a connection that has not sent the token by then is closed
MAX_FRAME = 256 * 1024 * 1024  # far above a call of the router's 512 batches of 10,000
_CALL = struct.Struct("<IQ")  # body length, call id
_ANSWER = struct.Struct("<IQB")  # body length, call id, kind
ANSWERS, ERROR = 0, 1


class ChannelClosed(ConnectionError):
    """The connection to the shard broke (its process ended, or it closed the channel):
    calls waiting on it have no answer and may or may not have been taken."""


class ChannelCallFailed(Exception):
    """The shard answered a call with an error instead of answers."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where a shard's channel listens, and the token it asks for."""

    host: str
    port: int
    token: bytes


Handler = Callable[[IngestCall], Awaitable[IngestAnswers]]
Serve = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _listen(serve: Serve, host: str, ports: tuple[int, int] | None) -> asyncio.Server:
    if ports is None:
        return await asyncio.start_server(serve, host, 0)
    low, high = ports
    first = secrets.randbelow(high - low + 1)
    for i in range(high - low + 1):
        port = low + (first + i) % (high - low + 1)
        try:
            return await asyncio.start_server(serve, host, port)
        except OSError as e:
            if e.errno != errno.EADDRINUSE:
                raise
    raise OSError(errno.EADDRINUSE, f"every port of {low}-{high} is taken on {host}")


class ChannelServer:
    """A shard's end: answers each call with ``handler``'s answers, calls taken concurrently
    as Ray takes a shard's calls, each answered when its handler returns."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.token = secrets.token_bytes(TOKEN_BYTES)
        self.calls = 0  # calls answered (tests; ``DeviceShard.status``)
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._tasks: set[asyncio.Task] = set()

    async def start(self, host: str, ports: tuple[int, int] | None = None) -> Address:
        """Listen on ``host`` (once; later calls give the same address): at a free port of
        ``ports`` (inclusive; tried from a random one on, so that shards on one node seldom
        meet) or, without, at a port the system picks. ``OSError`` naming the range when
        every port of it is taken."""
        if self._server is None:
            self._server = await _listen(self._serve, host, ports)
        port = self._server.sockets[0].getsockname()[1]
        return Address(host, port, self.token)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            hello = await asyncio.wait_for(
                reader.readexactly(len(MAGIC) + TOKEN_BYTES), HELLO_TIMEOUT_S
            )
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        if not hmac.compare_digest(hello, MAGIC + self.token):
            log.warning("ingest channel: a connection without the channel's token, closed")
            writer.close()
            return
        self._writers.add(writer)
        try:
            while True:
                length, call_id = _CALL.unpack(await reader.readexactly(_CALL.size))
                if length > MAX_FRAME:
                    log.warning("ingest channel: a call of %d bytes, connection closed", length)
                    break
                body = await reader.readexactly(length)
                task = asyncio.ensure_future(self._answer(writer, call_id, body))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the router went away (its replica stopped): its calls' answers are nobody's
        finally:
            self._writers.discard(writer)
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, call_id: int, body: bytes) -> None:
        try:
            answers = await self.handler(IngestCall.from_bytes(body))
            kind, data = ANSWERS, answers.to_bytes()
        except Exception as exc:  # told to the caller, which logs it
            kind, data = ERROR, f"{type(exc).__name__}: {exc}".encode()
        self.calls += 1
        if not writer.is_closing():
            writer.writelines((_ANSWER.pack(len(data), call_id, kind), data))

    def close(self) -> None:
        """Stop listening and close every connection (their routers' calls fail over)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()


class Channel:
    """A router's end: one connection to one shard incarnation, calls matched to answers by
    id (an answer that comes after its caller gave up is dropped)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._next_id = 0
        self._waiting: dict[int, asyncio.Future[tuple[int, bytes]]] = {}
        self._closed = False
        self._reading = asyncio.ensure_future(self._read())

    @classmethod
    async def open(cls, address: Address, timeout_s: float = 2.0) -> Channel:
        """Connect and send the token; ``OSError`` or ``TimeoutError`` if it cannot connect."""
        reader, writer = await asyncio.wait_for(
            asyncio.open_connection(address.host, address.port), timeout_s
        )
        writer.write(MAGIC + address.token)
        return cls(reader, writer)

    @property
    def closed(self) -> bool:
        return self._closed

    async def call(self, call: IngestCall) -> IngestAnswers:
        """The shard's answers to ``call``; :class:`ChannelClosed` if the connection breaks
        first, :class:`ChannelCallFailed` if the shard answers with an error."""
        if self._closed:
            raise ChannelClosed("the ingest channel is closed")
        self._next_id += 1
        call_id = self._next_id
        answer: asyncio.Future[tuple[int, bytes]] = asyncio.get_running_loop().create_future()
        self._waiting[call_id] = answer
        body = call.to_bytes()
        try:
            self._writer.writelines((_CALL.pack(len(body), call_id), body))
            await self._writer.drain()
            kind, data = await answer
        except ConnectionError as exc:
            self._close()
            raise ChannelClosed(f"the ingest channel broke: {exc}") from None
        finally:
            self._waiting.pop(call_id, None)
        if kind != ANSWERS:
            raise ChannelCallFailed(data.decode(errors="replace"))
        return IngestAnswers.from_bytes(data)

    async def _read(self) -> None:
        try:
            while True:
                head = await self._reader.readexactly(_ANSWER.size)
                length, call_id, kind = _ANSWER.unpack(head)
                data = await self._reader.readexactly(length)
                answer = self._waiting.pop(call_id, None)
                if answer is not None and not answer.done():
                    answer.set_result((kind, data))
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self._close()

    def _close(self) -> None:
        self._closed = True
        for answer in self._waiting.values():
            if not answer.done():
                answer.set_exception(ChannelClosed("the shard closed the ingest channel"))
        self._waiting.clear()
        self._writer.close()

    def close(self) -> None:
        """Close the connection; calls waiting on it fail with :class:`ChannelClosed`."""
        self._reading.cancel()
        self._close()
