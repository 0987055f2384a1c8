"""One device's ingest WebSocket, ``/v1/devices/{id}/readings/stream``, as a phone bridge
streaming a sensor would use it: one connection, one batch at a time, each answered after
commit. Reconnects (renewing the token when Vigil says it is no longer valid) and retries
like the HTTP upload (:func:`sensor_ingest.simulate.client.deliver`)."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake

from sensor_ingest.simulate.client import Answer, TransientError, VigilSession, deliver
from sensor_ingest.simulate.stats import SimulationStats

log = logging.getLogger(__name__)


def stream_url(base_url: str, device_id: str) -> str:
    base = base_url.rstrip("/")
    ws = base.replace("https://", "wss://", 1).replace("http://", "ws://", 1)
    return f"{ws}/v1/devices/{device_id}/readings/stream"


class IngestStream:
    def __init__(
        self, session: VigilSession, device_id: str, *, open_timeout_s: float = 30.0
    ) -> None:
        self.session = session
        self.device_id = device_id
        self.url = stream_url(str(session.client.base_url), device_id)
        self._open_timeout_s = open_timeout_s
        self._ws: ClientConnection | None = None
        self._token: str | None = None
        self._seq = 0

    async def send(
        self,
        readings: list[dict[str, Any]],
        stats: SimulationStats,
        *,
        stop: asyncio.Event | None = None,
        max_attempts: int = 8,
    ) -> bool:
        """Deliver one batch; True once Vigil acknowledged it (see ``deliver``)."""
        return await deliver(
            lambda: self.attempt(readings),
            self.session,
            self.device_id,
            len(readings),
            stats,
            stop=stop,
            max_attempts=max_attempts,
        )

    async def attempt(self, readings: list[dict[str, Any]]) -> Answer:
        token = self._token
        try:
            if self._ws is None:
                refused = await self._open()
                if refused is not None:
                    return refused
            token = self._token
            assert self._ws is not None
            self._seq += 1
            await self._ws.send(json.dumps({"seq": self._seq, "readings": readings}))
            while True:
                answer = json.loads(await self._ws.recv())
                if answer.get("seq") == self._seq:
                    break
        except ConnectionClosed as exc:
            self._ws = None
            code = exc.rcvd.code if exc.rcvd is not None else None
            if code is not None and 4400 <= code < 4500:  # Vigil ended it: 4401, 4403, 4404
                return Answer(code - 4000, token, detail=exc.rcvd.reason if exc.rcvd else "")
            raise TransientError(f"ingest stream closed ({code})") from exc
        except (OSError, TimeoutError, InvalidHandshake) as exc:
            self._ws = None
            raise TransientError(f"ingest stream: {exc}") from exc
        if answer.get("type") == "ack":
            return Answer(200, token, result=answer)
        retry = answer.get("retry_after_s")
        return Answer(
            int(answer.get("status", 500)),
            token,
            retry_after=None if retry is None else str(retry),
            detail=json.dumps(answer.get("detail")),
        )

    async def _open(self) -> Answer | None:
        """Connect and wait for ``ready``; Vigil's refusal as an Answer otherwise."""
        token = await self.session.fresh_token()
        ws = await connect(
            self.url,
            additional_headers={"Authorization": f"Bearer {token}"},
            open_timeout=self._open_timeout_s,
            max_size=None,
        )
        first = json.loads(await ws.recv())
        if first.get("type") != "ready":
            await ws.close()
            return Answer(int(first.get("status", 500)), token, detail=str(first.get("detail")))
        self._ws, self._token = ws, token
        log.debug("device %s: ingest stream open", self.device_id)
        return None

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
