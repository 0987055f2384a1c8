"""What an ``ingest_many`` call carries between a replica's router and a shard, and back.

A call carries many devices' batches, one reading each on a phone's live stream. Ray
pickles a call's arguments and answer object by object: a tuple per batch with a UUID and
two small arrays, an ``IngestOutcome`` per answer, cost the replica ~13 µs and the shard
~9 µs a batch (more than a one-reading batch's own work in the shard's arrays).
:class:`IngestCall` and :class:`IngestAnswers` carry the same as a few flat arrays; what
is not the common case (an answer other than a plain ``ok``) goes as itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal
from uuid import UUID

import numpy as np

from algorithms.validation import Problem

# One device's batch in an ``ingest_many`` call: (device_id, ts_us, values, received_us,
# history, request_id, body_site).
IngestBatch = tuple[UUID, np.ndarray, np.ndarray, int | None, bool, str | None, str | None]

_NO_TIME = -1  # received_us of a batch that has none (received_us >= 0 otherwise)


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: Literal["ok", "rejected", "unknown_device", "busy", "moved"]
    accepted: int = 0
    duplicates: int = 0
    problems: tuple[Problem, ...] = field(default_factory=tuple)
    retry_after_s: int = 0
    cause: str = ""  # busy: why the database is not taking the rows (``WriteBuffer.cause``)


@dataclass(frozen=True, slots=True)
class IngestCall:
    """Batches, packed: device ids as 16 bytes each, every batch's readings concatenated."""

    device_ids: bytes
    sizes: np.ndarray  # readings per batch (int64)
    ts_us: np.ndarray  # int64, all batches' in order
    values: np.ndarray  # float64, likewise
    received_us: np.ndarray  # int64 per batch, _NO_TIME for none
    history: np.ndarray  # bool per batch
    request_ids: tuple[str | None, ...]
    body_sites: tuple[str | None, ...]

    @classmethod
    def of(cls, batches: list[IngestBatch]) -> IngestCall:
        n = len(batches)
        for b in batches:
            if b[3] is not None and b[3] < 0:
                raise ValueError(f"received_us must be >= 0, not {b[3]}")
        return cls(
            device_ids=b"".join(b[0].bytes for b in batches),
            sizes=np.fromiter((len(b[1]) for b in batches), np.int64, n),
            ts_us=_joined([b[1] for b in batches], np.int64),
            values=_joined([b[2] for b in batches], np.float64),
            received_us=np.fromiter(
                (_NO_TIME if b[3] is None else b[3] for b in batches), np.int64, n
            ),
            history=np.fromiter((b[4] for b in batches), bool, n),
            request_ids=tuple(b[5] for b in batches),
            body_sites=tuple(b[6] for b in batches),
        )

    def __len__(self) -> int:
        return len(self.sizes)

    def batches(self) -> list[IngestBatch]:
        """The batches as they were given (each batch's arrays are views of the call's)."""
        ends = np.cumsum(self.sizes).tolist()
        starts = [0, *ends[:-1]][: len(ends)]
        ids, received, history = self.device_ids, self.received_us.tolist(), self.history
        return [
            (
                UUID(bytes=ids[16 * i : 16 * i + 16]),
                self.ts_us[start:end],
                self.values[start:end],
                None if received[i] == _NO_TIME else received[i],
                bool(history[i]),
                self.request_ids[i],
                self.body_sites[i],
            )
            for i, (start, end) in enumerate(zip(starts, ends, strict=True))
        ]


def _joined(arrays: list[np.ndarray], dtype: type) -> np.ndarray:
    return np.concatenate(arrays).astype(dtype, copy=False) if arrays else np.zeros(0, dtype)


@dataclass(frozen=True, slots=True)
class IngestAnswers:
    """Outcomes, packed: accepted and duplicates of every plain ``ok`` (status ok, nothing
    else set) in two arrays; any other outcome as itself, by position."""

    accepted: np.ndarray  # int64 per batch (0 where ``others`` has the outcome)
    duplicates: np.ndarray
    others: dict[int, IngestOutcome]

    @classmethod
    def of(cls, outcomes: list[IngestOutcome]) -> IngestAnswers:
        n = len(outcomes)
        others = {i: o for i, o in enumerate(outcomes) if not _plain(o)}
        return cls(
            accepted=np.fromiter((o.accepted for o in outcomes), np.int64, n),
            duplicates=np.fromiter((o.duplicates for o in outcomes), np.int64, n),
            others=others,
        )

    def outcomes(self) -> list[IngestOutcome]:
        others = self.others
        return [
            others.get(i) or IngestOutcome("ok", accepted=a, duplicates=d)
            for i, (a, d) in enumerate(
                zip(self.accepted.tolist(), self.duplicates.tolist(), strict=True)
            )
        ]


def _plain(o: IngestOutcome) -> bool:
    return o.status == "ok" and not o.problems and not o.retry_after_s and not o.cause
