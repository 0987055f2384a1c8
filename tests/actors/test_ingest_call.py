"""The packed form of an ``ingest_many`` call and its answers gives back exactly what was
packed, through Ray's own serialisation, for every shape a batch and an outcome can take."""

from __future__ import annotations

import uuid

import numpy as np
import pytest
import ray.cloudpickle as cloudpickle
from hypothesis import given
from hypothesis import strategies as st

from actors.ingest_call import IngestAnswers, IngestBatch, IngestCall, IngestOutcome
from algorithms.validation import Problem


def through_ray(obj: object) -> object:
    buffers: list = []
    data = cloudpickle.dumps(obj, protocol=5, buffer_callback=buffers.append)
    return cloudpickle.loads(data, buffers=buffers)


def same_batches(got: list[IngestBatch], want: list[IngestBatch]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        assert g[0] == w[0] and isinstance(g[0], uuid.UUID)
        assert g[1].dtype == np.int64 and g[2].dtype == np.float64
        np.testing.assert_array_equal(g[1], w[1])
        np.testing.assert_array_equal(g[2], w[2])  # NaN where NaN was
        assert g[3:] == w[3:]
        assert type(g[3]) in (int, type(None)) and type(g[4]) is bool


batch = st.tuples(
    st.uuids(),
    st.lists(st.integers(-(2**62), 2**62), max_size=5),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), min_size=5, max_size=5),
    st.none() | st.integers(0, 2**62),
    st.booleans(),
    st.none() | st.text(max_size=40),
    st.none() | st.sampled_from(["abdomen", "upper_arm", "axilla"]),
)


@given(st.lists(batch, max_size=12))
def test_batches_round_trip(raw: list[tuple]) -> None:
    batches: list[IngestBatch] = [
        (d, np.array(ts, np.int64), np.array(vs[: len(ts)], np.float64), rx, h, rid, site)
        for d, ts, vs, rx, h, rid, site in raw
    ]
    call = through_ray(IngestCall.of(batches))
    assert isinstance(call, IngestCall) and len(call) == len(batches)
    same_batches(call.batches(), batches)


def test_a_negative_receipt_time_is_refused() -> None:
    b: IngestBatch = (uuid.uuid4(), np.zeros(1, np.int64), np.zeros(1), -5, False, None, None)
    with pytest.raises(ValueError, match="received_us must be >= 0"):
        IngestCall.of([b])


OUTCOMES = [
    IngestOutcome("ok", accepted=3, duplicates=1),
    IngestOutcome("ok"),
    IngestOutcome("rejected", problems=(Problem(index=0, field="value", message="too high"),)),
    IngestOutcome("busy", retry_after_s=5, cause="down"),
    IngestOutcome("moved", retry_after_s=1),
    IngestOutcome("unknown_device"),
    IngestOutcome("ok", accepted=2, retry_after_s=1),  # not plain: kept as itself
]


@pytest.mark.parametrize("n", [0, 1, 7, 50])
def test_answers_round_trip(n: int) -> None:
    outcomes = [OUTCOMES[i % len(OUTCOMES)] for i in range(n)]
    answers = through_ray(IngestAnswers.of(outcomes))
    assert isinstance(answers, IngestAnswers)
    assert answers.outcomes() == outcomes
    assert len(answers.others) == sum(o.status != "ok" or o.retry_after_s > 0 for o in outcomes)


@given(st.lists(batch, max_size=12))
def test_batches_round_trip_on_the_wire(raw: list[tuple]) -> None:
    batches: list[IngestBatch] = [
        (d, np.array(ts, np.int64), np.array(vs[: len(ts)], np.float64), rx, h, rid, site)
        for d, ts, vs, rx, h, rid, site in raw
    ]
    call = IngestCall.from_bytes(IngestCall.of(batches).to_bytes())
    assert len(call) == len(batches)
    same_batches(call.batches(), batches)
    assert all(b[1].flags.writeable and b[2].flags.writeable for b in call.batches())


@pytest.mark.parametrize("n", [0, 1, 7, 50])
def test_answers_round_trip_on_the_wire(n: int) -> None:
    outcomes = [OUTCOMES[i % len(OUTCOMES)] for i in range(n)]
    assert IngestAnswers.from_bytes(IngestAnswers.of(outcomes).to_bytes()).outcomes() == outcomes


def a_call() -> bytes:
    b: IngestBatch = (uuid.uuid4(), np.array([1, 2], np.int64), np.ones(2), 5, False, "r", None)
    return IngestCall.of([b, b]).to_bytes()


@pytest.mark.parametrize(
    ("cut", "message"),
    [
        (lambda d: d[:10], "ends inside its counts"),
        (lambda d: d[:40], "ends inside its device ids"),
        (lambda d: d[:60], "ends inside its sizes"),
        (lambda d: d[:90], "ends inside its timestamps"),
        (lambda d: d[:120], "ends inside its values"),
        (lambda d: d[:-5], "not two JSON lists"),
        (lambda d: d[: d.rindex(b"[[")] + b'[["r"],[null]]', "2 strings or nulls each"),
        (lambda d: d[: d.rindex(b"[[")] + b'[["r",1],[null,null]]', "2 strings or nulls each"),
        (lambda d: d[:16] + d[16:48] + (3).to_bytes(8, "little") + d[56:], "do not add up"),
        (lambda d: (10**9).to_bytes(8, "little") + d[8:], "larger than the call"),
    ],
)
def test_a_malformed_call_is_refused_naming_what_is_wrong(cut, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        IngestCall.from_bytes(cut(a_call()))


def test_malformed_answers_are_refused() -> None:
    data = IngestAnswers.of([OUTCOMES[2], OUTCOMES[0]]).to_bytes()
    with pytest.raises(ValueError, match="ends inside its duplicate counts"):
        IngestAnswers.from_bytes(data[:40])
    with pytest.raises(ValueError, match="other outcomes are not as written"):
        IngestAnswers.from_bytes(data.replace(b'"rejected"', b'"accepted"'))
