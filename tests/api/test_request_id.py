"""Request ids: a caller's well-formed id is kept, anything else replaced."""

from __future__ import annotations

import logging

import pytest

from api import request_id


@pytest.mark.parametrize(
    "incoming",
    [b"abcdefgh", b"0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0", b"gw:node-7.batch_42", b"x" * 128],
)
def test_well_formed_ids_are_kept(incoming: bytes) -> None:
    assert request_id.accept_or_make(incoming) == incoming.decode()


@pytest.mark.parametrize(
    "incoming",
    [None, b"", b"short", b"x" * 129, b"has space in it", b"new\nline-injection", b"\xff" * 10],
)
def test_anything_else_is_replaced_by_a_new_id(incoming: bytes | None) -> None:
    made = request_id.accept_or_make(incoming)
    assert made != (incoming or b"").decode("latin-1") and len(made) == 32
    assert made != request_id.accept_or_make(incoming)  # new each time


def test_log_records_made_during_a_request_carry_its_id() -> None:
    request_id.install_log_field()
    request_id.install_log_field()  # idempotent
    token = request_id._current.set("req-12345678")
    try:
        inside = logging.getLogger("t").makeRecord("t", logging.INFO, "f", 1, "m", (), None)
    finally:
        request_id._current.reset(token)
    outside = logging.getLogger("t").makeRecord("t", logging.INFO, "f", 1, "m", (), None)
    assert inside.request_id == "req-12345678"
    assert not hasattr(outside, "request_id")
