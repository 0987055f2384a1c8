"""Issue 10, finding 3: a client cannot choose the address Vigil records and locks out.

The ingress (Ray Serve's HAProxy, as Vigil starts it) sets ``X-Forwarded-For`` to the
connecting peer, overwriting the client's; the replicas trust that header only from the
ingress and configured proxies. Every test client here connects from 127.0.0.1."""

from __future__ import annotations

import itertools
import uuid

import httpx

from cluster.ingress import forwarded_allow_ips, hardened_template
from tests.e2e.test_alerts import share
from tests.helpers import Account, self_profile, wait_until

REAL = "127.0.0.1"
VICTIM = "203.0.113.66"


def failures(db, key: str) -> int:
    return db.execute("SELECT count(*) FROM login_failures WHERE key = %s", (key,)).fetchone()[0]


def test_rotating_forwarded_for_still_counts_every_failure_against_the_real_address(
    client: httpx.Client, db
) -> None:
    before = failures(db, f"address:{REAL}")
    spoofed = (f"198.51.100.{i}" for i in itertools.count(1))
    for n in range(120):
        email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"  # no account lockout on the way
        headers = {"X-Forwarded-For": next(spoofed), "X-Real-IP": VICTIM}
        if n % 2:  # two header lines, as a client can also send them
            headers["X-Forwarded-For"] += f", {VICTIM}"
        r = client.post(
            "/v1/auth/token", data={"username": email, "password": "wrong pass"}, headers=headers
        )
        assert r.status_code == 401, r.text
    assert failures(db, f"address:{REAL}") - before == 120
    found = db.execute(
        "SELECT count(*) FROM login_failures WHERE key LIKE 'address:198.51.100.%%'"
    ).fetchone()[0]
    assert found == 0


def test_a_victim_address_in_the_header_is_never_locked(client: httpx.Client, db) -> None:
    email = f"nobody-{uuid.uuid4().hex[:8]}@example.com"
    for _ in range(5):
        r = client.post(
            "/v1/auth/token",
            data={"username": email, "password": "wrong pass"},
            headers={"X-Forwarded-For": VICTIM, "Forwarded": f"for={VICTIM}"},
        )
        assert r.status_code == 401
    assert failures(db, f"address:{VICTIM}") == 0
    assert failures(db, f"account:{email}") == 5


def test_the_audit_log_records_the_real_peer(account: Account, db, stack) -> None:
    device = account.device("glucose")
    follower = share(db, account, self_profile(account), ["readings"])
    r = follower.client.get(
        f"/v1/devices/{device['id']}/readings",
        headers={**follower.headers, "X-Forwarded-For": VICTIM, "X-Forwarded-Proto": "https"},
    )
    assert r.status_code == 200, r.text

    def entries() -> list[dict]:
        got = account.client.get("/v1/me/audit", headers=account.headers).json()["items"]
        return [e for e in got if e["actor_email"] == follower.email]

    (entry,) = wait_until(entries, what="the follower's read in the audit log")
    assert entry["client_addr"] == REAL


def test_configured_proxies_are_trusted_and_the_rest_overwritten() -> None:
    template = "    bind {{ config.frontend_host }}:{{ config.frontend_port }}\n"
    shipped = (
        "stats socket {{ config.socket_path }} mode 666 level admin\n"
        "frontend prometheus\n    bind :{{ config.metrics_port }}\n"
        f"frontend http_frontend\n{template}"
        "listen stats\n  bind *:{{ config.stats_port }}\n"
    )
    alone = hardened_template(shipped, [], "127.0.0.1")
    assert "http-request set-header X-Forwarded-For %[src]\n" in alone
    assert "add-header X-Forwarded-For" not in alone
    behind = hardened_template(shipped, ["10.0.0.0/8", "192.0.2.7/32"], "127.0.0.1")
    assert "acl vigil_trusted_proxy src 10.0.0.0/8 192.0.2.7/32" in behind
    assert "set-header X-Forwarded-For %[src] if !vigil_trusted_proxy" in behind
    assert "add-header X-Forwarded-For %[src] if vigil_trusted_proxy" in behind
    assert forwarded_allow_ips(["10.0.0.0/8"]) == "127.0.0.1,::1,10.0.0.0/8"
