"""Logs: JSON lines with a request id from the upload to the commit to the alert, and no
secrets or health values in any log file of the stack."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.cli import app as cli
from cluster.logs import LogReader, log_files, stack_log_dirs
from tests.e2e.test_alerts import alerts_of
from tests.helpers import Account, minutes_ago, self_profile, wait_until
from tests.mail import reset_token

# A fall to urgent low, every 30 s; the odd decimals make each value findable in a log.
FALL = [round(130.173 - 3.5 * i, 3) for i in range(24)]


def test_a_well_formed_request_id_is_kept_and_a_bad_one_replaced(client) -> None:
    mine = f"client-{uuid.uuid4().hex}"
    answered = client.get("/readyz", headers={"X-Request-ID": mine})
    assert answered.headers.get_list("x-request-id") == [mine]
    for bad in ("short", "x" * 200, "semi;colon-1234", "has spaces in it"):
        got = client.get("/readyz", headers={"X-Request-ID": bad}).headers.get_list("x-request-id")
        # Vigil's own id first; Serve then appends an echo of what came in (api.request_id).
        assert got[0] != bad and len(got[0]) == 32 and int(got[0], 16) >= 0
    assert len(client.get("/readyz").headers.get_list("x-request-id")) == 1


def stack_logs(stack) -> list[Path]:
    return log_files(stack_log_dirs(stack.settings.run_dir, stack.settings.log_dir))


@pytest.mark.slow
def test_request_id_follows_a_reading_to_its_alert_and_no_secret_is_logged(
    client, stack, smtp
) -> None:
    email = f"Log.Scan-{uuid.uuid4().hex[:10]}@example.com"
    password = f"secret passphrase {uuid.uuid4().hex[:12]}"
    r = client.post("/v1/auth/signup", json={"email": email, "password": password, "name": "L"})
    assert r.status_code == 202, r.text
    login = client.post("/v1/auth/token", data={"username": email, "password": password}).json()
    account = Account(client, email, password, {"Authorization": f"Bearer {login['access_token']}"})
    pid = self_profile(account)
    device = account.device("glucose")

    run = uuid.uuid4().hex[:12]
    start = minutes_ago(12)
    for i, value in enumerate(FALL):
        ts = start.timestamp() + 30 * i
        body = {"readings": [{"ts": _iso(ts), "value": value}]}
        r = client.post(
            f"/v1/devices/{device['id']}/readings",
            json=body,
            headers={**account.headers, "X-Request-ID": f"{run}-{i:02d}"},
        )
        assert r.status_code == 200, r.text
        assert r.headers["x-request-id"] == f"{run}-{i:02d}"

    (alert,) = wait_until(
        lambda: [a for a in alerts_of(account, pid) if a["rule"] == "urgent_low"], 30, "alert"
    )
    smtp.inbox.wait_for(email, count=2)  # alerts by email: the notifier delivered
    invitee = f"Invitee-{uuid.uuid4().hex[:10]}@example.com"
    r = client.post(
        f"/v1/profiles/{pid}/shares",
        json={"email": invitee, "scopes": ["readings"]},
        headers=account.headers,
    )
    assert r.status_code == 201, r.text
    assert client.post("/v1/auth/password-reset", json={"email": email}).status_code == 202
    reset = reset_token(
        wait_until(
            lambda: [m for m in smtp.inbox.to(email) if "eset" in m["Subject"]], 30, "reset mail"
        )[0]
    )
    new_password = f"another passphrase {uuid.uuid4().hex[:12]}"
    r = client.post(
        "/v1/auth/password-reset/confirm", json={"token": reset, "new_password": new_password}
    )
    assert r.status_code == 200, r.text

    # The alert's upload: its id is in the API's line, the shard's commit and the notifier's.
    def traced() -> list[dict] | None:
        records = LogReader(stack_log_dirs(stack.settings.run_dir, stack.settings.log_dir))
        mine = [r for r in records.new_records() if _mentions_run(r, run)]
        messages = {r["message"] for r in mine}
        return mine if {"upload", "committed", "alert dispatch"} <= messages else None

    mine = wait_until(traced, 40, "the request id in the API, shard and notifier logs")
    dispatched = [r for r in mine if r["message"] == "alert dispatch"]
    assert alert["id"] in {r["alert_id"] for r in dispatched}
    fired = next(r for r in dispatched if r["alert_id"] == alert["id"])["request_id"]
    assert any(r["message"] == "committed" and fired in r["request_ids"] for r in mine)
    assert any(r["message"] == "upload" and r.get("request_id") == fired for r in mine)
    assert len({r["source"].split("/")[0] for r in mine}) >= 2  # Serve's dir and the workers'

    secrets = {
        "email": email,
        "email (lower case)": email.lower(),
        "invited email": invitee,
        "password": password,
        "new password": new_password,
        "access token": login["access_token"],
        "refresh token": login["refresh_token"],
        "reset token": reset,
        **{f"glucose {v}": f"{v:.3f}".rstrip("0") for v in FALL},
    }
    time.sleep(2)  # let every process flush
    files = stack_logs(stack)
    assert len(files) > 10
    leaks = [
        f"{what} in {path}"
        for path in files
        for text in [path.read_text(errors="replace")]
        for what, secret in secrets.items()
        if secret in text
    ]
    assert leaks == []


def test_vigil_logs_prints_merged_json_lines(client, stack) -> None:
    rid = f"cli-{uuid.uuid4().hex}"
    client.get("/readyz", headers={"X-Request-ID": rid})
    result = CliRunner().invoke(cli, ["logs"], env={"VIGIL_DATA_DIR": str(stack.settings.data_dir)})
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in result.output.splitlines()]
    assert records and all("source" in r and "message" in r for r in records)
    stamps = [r["timestamp_ns"] for r in records]
    assert stamps == sorted(stamps)
    assert len({r["source"] for r in records}) >= 3  # driver, shards, Serve replica ...


def _mentions_run(record: dict, run: str) -> bool:
    ids = [record.get("request_id") or "", *record.get("request_ids", ())]
    return any(i.startswith(run) for i in ids)


def _iso(ts: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ts, UTC).isoformat()
