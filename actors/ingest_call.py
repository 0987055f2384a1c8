"""What an ``ingest_many`` call carries between a replica's router and a shard, and back.

A call carries many devices' batches, one reading each on a phone's live stream. Ray
pickles a call's arguments and answer object by object: a tuple per batch with a UUID and
two small arrays, an ``IngestOutcome`` per answer, cost the replica ~13 µs and the shard
~9 µs a batch (more than a one-reading batch's own work in the shard's arrays).
:class:`IngestCall` and :class:`IngestAnswers` carry the same as a few flat arrays; what
is not the common case (an answer other than a plain ``ok``) goes as itself.

Both also have a wire form of their own (``to_bytes``/``from_bytes``: the arrays' bytes and a
JSON tail, no pickle) for the shard's ingest channel (``actors.channel``), which carries the
calls on a plain socket; decoding checks every length and refuses what does not fit
(``ValueError``).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Literal, get_args
from uuid import UUID

import numpy as np
import orjson

from algorithms.validation import Problem

# One device's batch in an ``ingest_many`` call: (device_id, ts_us, values, received_us,
# history, request_id, body_site).
IngestBatch = tuple[UUID, np.ndarray, np.ndarray, int | None, bool, str | None, str | None]

_NO_TIME = -1  # received_us of a batch that has none (received_us >= 0 otherwise)
_COUNTS = struct.Struct("<QQ")  # wire form's head: batches, readings (answers: batches, 0)

Status = Literal["ok", "rejected", "unknown_device", "busy", "moved"]
_STATUSES = frozenset(get_args(Status))


@dataclass(frozen=True, slots=True)
class IngestOutcome:
    status: Status
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

    def to_bytes(self) -> bytes:
        """The wire form: counts, the arrays' bytes, then the strings as JSON."""
        n, m = len(self.sizes), len(self.ts_us)
        return b"".join(
            (
                _COUNTS.pack(n, m),
                self.device_ids,
                self.sizes.astype("<i8", copy=False).tobytes(),
                self.ts_us.astype("<i8", copy=False).tobytes(),
                self.values.astype("<f8", copy=False).tobytes(),
                self.received_us.astype("<i8", copy=False).tobytes(),
                self.history.astype(np.uint8, copy=False).tobytes(),
                orjson.dumps([self.request_ids, self.body_sites]),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> IngestCall:
        """The call ``to_bytes`` wrote; ``ValueError`` naming what does not fit otherwise."""
        view = memoryview(data)
        n, m = _counts(view, "the call")
        cut = _Cutter(view, _COUNTS.size, "the call")
        device_ids = bytes(cut.take(16 * n, "device ids"))
        sizes = cut.array(n, "<i8", "sizes")
        ts_us = cut.array(m, "<i8", "timestamps")
        values = cut.array(m, "<f8", "values")
        received_us = cut.array(n, "<i8", "receipt times")
        history = cut.array(n, "u1", "history flags")
        if (sizes < 0).any() or int(sizes.sum()) != m:
            raise ValueError(f"batch sizes do not add up to the call's {m} readings")
        if (received_us < _NO_TIME).any() or (history > 1).any():
            raise ValueError("a receipt time below -1 or a history flag other than 0 and 1")
        request_ids, body_sites = _strings(cut.rest(), n)
        return cls(
            device_ids,
            sizes,
            ts_us,
            values,
            received_us,
            history.astype(bool),
            request_ids,
            body_sites,
        )


class _Cutter:
    """Reads a wire form front to back, refusing one that ends early."""

    def __init__(self, view: memoryview, at: int, whole: str) -> None:
        self.view, self.at, self.whole = view, at, whole

    def take(self, size: int, what: str) -> memoryview:
        end = self.at + size
        if end > len(self.view):
            raise ValueError(f"{self.whole} ends inside its {what}")
        part, self.at = self.view[self.at : end], end
        return part

    def array(self, count: int, wire: str, what: str) -> np.ndarray:
        """``count`` items of the little-endian ``wire`` type, as a writable native copy."""
        wire_type = np.dtype(wire)
        raw = self.take(count * wire_type.itemsize, what)
        return np.frombuffer(raw, wire_type).astype(wire_type.newbyteorder("="))

    def rest(self) -> memoryview:
        part, self.at = self.view[self.at :], len(self.view)
        return part


def _counts(view: memoryview, whole: str) -> tuple[int, int]:
    if len(view) < _COUNTS.size:
        raise ValueError(f"{whole} ends inside its counts")
    n, m = _COUNTS.unpack_from(view)
    if n > len(view) or m > len(view):  # each batch and reading takes bytes of its own
        raise ValueError(f"counts {n} and {m} larger than {whole}")
    return n, m


def _strings(raw: memoryview, n: int) -> tuple[tuple[str | None, ...], tuple[str | None, ...]]:
    try:
        request_ids, body_sites = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError, ValueError):
        raise ValueError("the call's request ids and body sites are not two JSON lists") from None
    for strings in (request_ids, body_sites):
        if (
            not isinstance(strings, list)
            or len(strings) != n
            or not all(s is None or isinstance(s, str) for s in strings)
        ):
            raise ValueError(f"request ids and body sites must be {n} strings or nulls each")
    return tuple(request_ids), tuple(body_sites)


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

    def to_bytes(self) -> bytes:
        """The wire form: the count, the two arrays' bytes, then the other outcomes as JSON."""
        others = [
            [i, o.status, o.accepted, o.duplicates, [_problem(p) for p in o.problems],
             o.retry_after_s, o.cause]
            for i, o in self.others.items()
        ]  # fmt: skip
        return b"".join(
            (
                _COUNTS.pack(len(self.accepted), 0),
                self.accepted.astype("<i8", copy=False).tobytes(),
                self.duplicates.astype("<i8", copy=False).tobytes(),
                orjson.dumps(others, option=orjson.OPT_SERIALIZE_NUMPY),
            )
        )

    @classmethod
    def from_bytes(cls, data: bytes | bytearray | memoryview) -> IngestAnswers:
        """The answers ``to_bytes`` wrote; ``ValueError`` naming what does not fit otherwise."""
        view = memoryview(data)
        n, _ = _counts(view, "the answers")
        cut = _Cutter(view, _COUNTS.size, "the answers")
        accepted = cut.array(n, "<i8", "accepted counts")
        duplicates = cut.array(n, "<i8", "duplicate counts")
        try:
            rows = orjson.loads(cut.rest())
            others = {int(row[0]): _outcome(row, n) for row in rows}
        except (orjson.JSONDecodeError, TypeError, ValueError, IndexError, KeyError):
            raise ValueError("the answers' other outcomes are not as written") from None
        return cls(accepted, duplicates, others)

    def outcomes(self) -> list[IngestOutcome]:
        others = self.others
        return [
            others.get(i) or IngestOutcome("ok", accepted=a, duplicates=d)
            for i, (a, d) in enumerate(
                zip(self.accepted.tolist(), self.duplicates.tolist(), strict=True)
            )
        ]


def _problem(p: Problem) -> list:
    return [p.index, p.field, p.message, list(p.path)]


def _outcome(row: list, n: int) -> IngestOutcome:
    i, status, accepted, duplicates, problems, retry_after_s, cause = row
    if not 0 <= i < n or status not in _STATUSES:
        raise ValueError(f"outcome {i} of {n}: {status!r}")
    return IngestOutcome(
        status,
        accepted=int(accepted),
        duplicates=int(duplicates),
        problems=tuple(Problem(p[0], p[1], str(p[2]), tuple(p[3])) for p in problems),
        retry_after_s=int(retry_after_s),
        cause=str(cause),
    )


def _plain(o: IngestOutcome) -> bool:
    return o.status == "ok" and not o.problems and not o.retry_after_s and not o.cause
