"""``actors.metrics.readings``: batches' outcomes added up, sent to the counter together."""

from __future__ import annotations

import asyncio

import pytest

from actors import metrics


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, float, dict]]:
    calls: list[tuple[str, float, dict]] = []
    monkeypatch.setattr(
        metrics, "inc", lambda name, value=1.0, **tags: calls.append((name, value, tags))
    )
    monkeypatch.setattr(metrics, "READINGS_FLUSH_S", 0.05)
    metrics.flush_readings()
    calls.clear()
    return calls


async def test_batches_in_a_loop_are_sent_together_and_none_is_lost(sent: list) -> None:
    for _ in range(500):
        metrics.readings("glucose", accepted=1)
    metrics.readings("glucose", accepted=98, duplicates=2)
    metrics.readings("temperature", rejected=3)
    assert sent == []  # not yet: within READINGS_FLUSH_S
    await asyncio.sleep(0.2)
    assert sorted((v, t["kind"], t["outcome"]) for _, v, t in sent) == [
        (2, "glucose", "duplicate"),
        (3, "temperature", "rejected"),
        (598, "glucose", "accepted"),
    ]
    assert {name for name, _, _ in sent} == {"vigil_readings_total"}
    sent.clear()
    metrics.readings("glucose", accepted=7)  # a later batch starts a new round
    await asyncio.sleep(0.2)
    assert [(v, t["outcome"]) for _, v, t in sent] == [(7, "accepted")]


def test_outside_an_event_loop_a_batch_is_sent_at_once(sent: list) -> None:
    metrics.readings("glucose", accepted=4, duplicates=0)
    assert [(v, t["outcome"]) for _, v, t in sent] == [(4, "accepted")]
