"""Every request body has a ceiling, applied before the body is read whole: a declared
length over it is a 413 at once, a chunked body a 413 as soon as it passes it; nothing of
such a request is stored. The routes that take files keep their own, larger limits."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import psycopg

from api.body_limit import DEFAULT_BYTES, ceiling
from tests.helpers import Account, minutes_ago, series


def oversized_upload(count: int) -> bytes:
    """A readings upload of ``count`` readings (valid JSON, past the ceiling when large)."""
    readings = series(minutes_ago(60 * 24 * 30), count, 60, 120.0, 0.0)
    return json.dumps({"readings": readings}).encode()


def stored(db: psycopg.Connection, device_id: str) -> int:
    row = db.execute("SELECT count(*) FROM readings WHERE device_id = %s", (device_id,)).fetchone()
    return row[0]


def test_a_declared_body_over_the_ceiling_is_refused_before_it_is_read(
    account: Account, db: psycopg.Connection
) -> None:
    device = account.device("glucose")
    body = oversized_upload(80_000)
    assert len(body) > DEFAULT_BYTES
    for _ in range(3):  # each answer arrives whole (the body is read, not reset mid-send)
        r = account.client.post(
            f"/v1/devices/{device['id']}/readings",
            content=body,
            headers={**account.headers, "Content-Type": "application/json"},
        )
        assert r.status_code == 413, r.text
        assert f"{DEFAULT_BYTES:,} bytes" in r.json()["detail"]
    assert stored(db, device["id"]) == 0


def test_a_chunked_body_is_cut_off_at_the_ceiling(account: Account, db: psycopg.Connection) -> None:
    device = account.device("glucose")
    body = oversized_upload(80_000)

    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        for i in range(0, len(body), 65_536):
            yield body[i : i + 65_536]

    r = account.client.post(
        f"/v1/devices/{device['id']}/readings",
        content=chunks(),
        headers={**account.headers, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert stored(db, device["id"]) == 0
    # the next request on a fresh connection is served as usual
    ok = account.upload(device["id"], series(minutes_ago(10), 3, 60, 110.0, 0.0))
    assert ok.status_code == 200 and ok.json()["accepted"] == 3


def test_files_keep_their_own_larger_limit(client: httpx.Client, account: Account) -> None:
    """A 5 MB history file passes the ceiling and reaches the import's own checks (not a
    history format: 422, not 413)."""
    device = account.device("glucose")
    path = f"/v1/devices/{device['id']}/import"
    assert ceiling(path) > 5_000_000 > DEFAULT_BYTES
    assert ceiling("/fhir/r4/$submit-cgm-bundle") > DEFAULT_BYTES
    r = client.post(
        path,
        files={"file": ("export.csv", b"not,a,known,export\n" * 260_000, "text/csv")},
        headers=account.headers,
    )
    assert r.status_code == 422, r.text
