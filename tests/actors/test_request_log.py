"""``actors.request_log.RequestLog``: which request ids a shard's ``committed`` line names."""

from __future__ import annotations

from actors.request_log import RequestLog


def test_every_upload_is_named_and_a_stream_once_a_minute() -> None:
    named = RequestLog(every_s=60)
    stream = "stream-1"
    lines = [named.fresh([stream, f"upload-{s}", None], float(s)) for s in range(180)]
    # Every upload's id, in every line; the stream's at 0, 60 and 120 s only.
    assert all(f"upload-{s}" in line for s, line in enumerate(lines))
    assert [s for s, line in enumerate(lines) if stream in line] == [0, 60, 120]
    assert lines[0] == [stream, "upload-0"]  # in the batches' order, no None


def test_an_id_is_named_once_per_line() -> None:
    assert RequestLog().fresh(["a", "a", "b", "a"], 0.0) == ["a", "b"]


def test_what_may_be_named_again_is_forgotten() -> None:
    named = RequestLog(every_s=10)
    for s in range(100):
        named.fresh([f"upload-{s}"], float(s))
    assert len(named) <= 20  # an hour of unique uploads does not pile up
    assert named.fresh(["upload-99"], 100.0) == []  # still within its 10 s
    assert named.fresh(["upload-99"], 109.0) == ["upload-99"]
