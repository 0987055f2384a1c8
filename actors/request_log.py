"""Which request ids a shard's ``committed`` log line names.

The line says which requests' rows a shard committed, so that one upload can be followed
from the API's log through the shard's to the notifier's. An HTTP upload's request id is new
with every request; a WebSocket stream's is the connection's, carried by every batch of it.
Named in every commit, a stream's id came back once a second for every device that streams
(about 45 KB of log a second per shard at 1,000 streaming devices, and 3 % of the shard's
CPU), while the stream itself writes one line when it closes. So an id is named again only
``every_s`` after it last was: every request once, and a long stream once a minute.
"""

from __future__ import annotations

from collections.abc import Iterable


class RequestLog:
    def __init__(self, every_s: float = 60.0) -> None:
        self.every_s = every_s
        self._named: dict[str, float] = {}  # id -> when last named
        self._pruned_at = float("-inf")

    def fresh(self, request_ids: Iterable[str | None], now_s: float) -> list[str]:
        """The ids to name in a line at ``now_s`` (each once, in order), remembered as named."""
        if now_s - self._pruned_at >= self.every_s:  # forget what may be named again
            self._named = {r: t for r, t in self._named.items() if now_s - t < self.every_s}
            self._pruned_at = now_s
        out = []
        for r in request_ids:
            if r and now_s - self._named.get(r, float("-inf")) >= self.every_s:
                self._named[r] = now_s
                out.append(r)
        return out

    def __len__(self) -> int:
        return len(self._named)
