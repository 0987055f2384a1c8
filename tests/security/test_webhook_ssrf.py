"""Finding 5: webhooks must not reach non-public destinations (server-side request forgery),
in any spelling of an address, neither at registration nor at delivery after DNS resolution;
the delivery log shows only a generic failure; webhooks per user are limited."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from pydantic import ValidationError

from actors.destinations import (
    DestinationRefused,
    address_problem,
    resolve_public,
    url_problem,
    webhook_client,
)
from actors.notifier import REFUSED_DETAIL, Permanent, failure_detail
from api.app import create_app
from cluster.settings import Settings
from storage.embedded import free_port
from tests.e2e.test_alerts import alerts_of, one_by_one, put_settings
from tests.e2e.test_delivery import Receiver
from tests.helpers import Account, minutes_ago, self_profile, sign_up

# Every spelling of a non-public destination the probe tried, and the usual bypasses.
NON_PUBLIC = {
    "metadata": "http://169.254.169.254/latest/meta-data/",
    "loopback": "http://127.0.0.1:54329/",
    "loopback-ipv6": "http://[::1]/",
    "ten": "http://10.1.2.3/hook",
    "one-nine-two": "http://192.168.1.1/hook",
    "one-seven-two": "http://172.16.0.1/hook",
    "hex": "http://0x7f000001/",
    "decimal": "http://2130706433/",
    "octal": "http://0177.0.0.1/",
    "short": "http://127.1/",
    "short-hex": "http://0x7f.1/",
    "mapped-ipv6": "http://[::ffff:127.0.0.1]/",
    "mapped-metadata": "http://[::ffff:a9fe:a9fe]/",
    "unspecified": "http://0.0.0.0:8000/",
    "unspecified-ipv6": "http://[::]/",
    "link-local-ipv6": "http://[fe80::1]/",
    "unique-local-ipv6": "http://[fd00::1]/",
    "cgnat": "http://100.64.0.1/",
    "multicast": "http://224.0.0.1/",
    "multicast-ipv6": "http://[ff02::1]/",
    "broadcast": "http://255.255.255.255/",
    "reserved": "http://240.0.0.1/",
    "benchmarking": "http://198.18.0.1/",
    "ietf-protocol": "http://192.0.0.8/",
    "6to4-loopback": "http://[2002:7f00:1::]/",
    "nat64-loopback": "http://[64:ff9b::7f00:1]/",
    "localhost": "http://localhost:8000/",
    "localhost-upper-trailing-dot": "http://LOCALHOST./",
    "localhost-subdomain": "http://vigil.localhost/",
    "trailing-dot": "http://127.0.0.1./",
    "userinfo-trick": "http://public@127.0.0.1/",
    "userinfo-looks-public": "http://hooks.example.com@169.254.169.254/",
    "single-label": "http://intranet/hook",
    "mdns": "http://printer.local/",
    "internal": "http://metadata.google.internal/",
}
# Refused even with VIGIL_WEBHOOK_ALLOW_PRIVATE (local test receivers need only loopback).
ALWAYS_REFUSED = [
    "metadata",
    "mapped-metadata",
    "unspecified",
    "unspecified-ipv6",
    "link-local-ipv6",
    "multicast",
    "multicast-ipv6",
    "broadcast",
    "reserved",
]
NOT_HTTP = ["ftp://example.com/", "file:///etc/passwd", "gopher://example.com/", "//x"]
PUBLIC = [
    "https://hooks.example.com/vigil",
    "http://93.184.216.34:8080/hook",
    "https://[2606:4700:4700::1111]/",
    "https://user:pw@hooks.example.com/x?token=1",
]


@pytest.mark.parametrize("url", NON_PUBLIC.values(), ids=NON_PUBLIC.keys())
def test_non_public_destination_is_refused(url: str) -> None:
    assert url_problem(url) is not None  # not public, or not even a URL the client takes


@pytest.mark.parametrize("name", ALWAYS_REFUSED)
def test_special_addresses_are_refused_even_when_private_ones_are_allowed(name: str) -> None:
    assert url_problem(NON_PUBLIC[name], allow_private=True) is not None


@pytest.mark.parametrize("name", ["loopback", "ten", "short", "localhost", "cgnat"])
def test_allow_private_lets_local_receivers_through(name: str) -> None:
    assert url_problem(NON_PUBLIC[name]) is not None
    assert url_problem(NON_PUBLIC[name], allow_private=True) is None


@pytest.mark.parametrize("url", NOT_HTTP)
def test_only_http_and_https(url: str) -> None:
    assert url_problem(url, allow_private=True) is not None


@pytest.mark.parametrize("url", PUBLIC)
def test_public_destinations_are_accepted(url: str) -> None:
    assert url_problem(url) is None


@pytest.mark.parametrize(
    "host", ["127.1", "0x7f000001", "2130706433", "0177.0.0.1", "::1", "0.0.0.0", "::ffff:10.0.0.1"]
)
async def test_what_a_name_resolves_to_is_checked(host: str) -> None:
    """Resolution goes through the system resolver, which reads every spelling."""
    with pytest.raises(DestinationRefused):
        await resolve_public(host, 80)


def test_address_check_is_the_ipaddress_module_plus_special_ranges() -> None:
    import ipaddress

    assert address_problem(ipaddress.ip_address("8.8.8.8")) is None
    assert address_problem(ipaddress.ip_address("224.0.0.1")) is not None  # is_global in 3.11


# -- at delivery: the HTTP client connects only to checked addresses ----------------------


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


async def test_the_webhook_client_refuses_a_loopback_receiver(receiver: Receiver) -> None:
    async with webhook_client(5) as client:
        with pytest.raises(DestinationRefused):
            await client.post(receiver.url, content=b"{}")
    assert receiver.requests == []


async def test_a_name_that_resolves_to_a_private_address_is_refused(receiver: Receiver) -> None:
    """DNS rebinding: the name looked public when registered, now answers 127.0.0.1."""

    async def rebound(host: str, port: int, allow_private: bool) -> list[str]:
        return await resolve_public("127.0.0.1", port, allow_private)

    port = receiver.server.server_port
    async with webhook_client(5, resolve=rebound) as client:
        with pytest.raises(DestinationRefused):
            await client.post(f"http://hooks.example.com:{port}/hook", content=b"{}")
    assert receiver.requests == []


async def test_the_client_connects_to_the_address_it_checked(receiver: Receiver) -> None:
    """One resolution per connection, and the connection goes to its (checked) answer."""
    asked: list[str] = []

    async def resolver(host: str, port: int, allow_private: bool) -> list[str]:
        asked.append(host)
        return await resolve_public("127.0.0.1", port, allow_private)

    port = receiver.server.server_port
    async with webhook_client(5, allow_private=True, resolve=resolver) as client:
        r = await client.post(f"http://hooks.example.com:{port}/hook", content=b"{}")
    assert r.status_code == 200 and asked == ["hooks.example.com"]
    (headers, _body, _code) = receiver.requests[0]
    assert headers["Host"] == f"hooks.example.com:{port}"


def test_the_delivery_log_never_carries_an_error_text() -> None:
    leaky = httpx.ConnectError("[Errno 111] Connection refused: 10.0.0.5:5432 said hello")
    assert failure_detail(leaky) == "could not connect"
    assert failure_detail(httpx.ReadTimeout("10.0.0.5")) == "timed out"
    assert failure_detail(ValueError("internal detail")) == "delivery failed"
    assert failure_detail(Permanent(REFUSED_DETAIL)) == REFUSED_DETAIL


# -- over HTTP --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod_api(stack) -> Iterator[str]:
    """The same app, with the production default (no private destinations), served next
    to the test stack (which allows them for its local receivers) over the same database."""
    config = stack.settings.api_config(stack.database_url).model_copy(
        update={"webhook_allow_private": False}
    )
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "API did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.mark.parametrize("url", NON_PUBLIC.values(), ids=NON_PUBLIC.keys())
def test_registration_refuses_a_non_public_destination(
    prod_api: str, account: Account, url: str
) -> None:
    with httpx.Client(base_url=prod_api, timeout=30) as c:
        r = c.post("/v1/webhooks", json={"url": url}, headers=account.headers)
        assert r.status_code == 422, r.text
        (item,) = r.json()["detail"]
        assert item["loc"] == ["body", "url"] and item["msg"].startswith("webhook URL")
        assert c.get("/v1/webhooks", headers=account.headers).json() == []


def test_registration_accepts_a_public_destination(prod_api: str, account: Account) -> None:
    with httpx.Client(base_url=prod_api, timeout=30) as c:
        url = "https://hooks.example.com/vigil"
        r = c.post("/v1/webhooks", json={"url": url}, headers=account.headers)
        assert r.status_code == 201, r.text
        assert [w["url"] for w in c.get("/v1/webhooks", headers=account.headers).json()] == [url]


def test_webhooks_per_user_are_limited(stack, account: Account) -> None:
    limit = stack.settings.max_webhooks_per_user
    for i in range(limit):
        r = account.client.post(
            "/v1/webhooks", json={"url": f"https://hooks.example.com/{i}"}, headers=account.headers
        )
        assert r.status_code == 201, r.text
    r = account.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/x"}, headers=account.headers
    )
    assert r.status_code == 409 and str(limit) in r.json()["detail"]
    assert len(account.client.get("/v1/webhooks", headers=account.headers).json()) == limit
    other = sign_up(account.client)  # the limit is per user
    r = other.client.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/x"}, headers=other.headers
    )
    assert r.status_code == 201


def test_a_stored_webhook_to_a_non_public_address_is_refused_at_delivery(
    account: Account, db, receiver: Receiver
) -> None:
    """A webhook stored before registration checked (or pointing at 0.0.0.0, which reaches
    this machine's loopback on Linux) never gets a request; its owner sees a generic reason."""
    pid = self_profile(account)
    device = account.device("glucose")
    put_settings(account, pid, {"glucose": [{"kind": "high", "threshold": 180}]})
    port = receiver.server.server_port
    db.execute(
        "INSERT INTO webhooks (user_id, url, secret)"
        " SELECT id, %s, 'whsec_test' FROM users WHERE email = %s",
        (f"http://0.0.0.0:{port}/hook?token=internal", account.email),
    )
    one_by_one(account, device["id"], minutes_ago(5), 60, [220])
    (alert,) = alerts_of(account, pid)
    deadline = time.monotonic() + 30
    while True:
        got = account.client.get(f"/v1/alerts/{alert['id']}", headers=account.headers).json()
        hooks = [d for d in got["deliveries"] if d["channel"] == "webhook"]
        if hooks or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert [(d["status"], d["detail"], d["target"]) for d in hooks] == [
        ("failed", REFUSED_DETAIL, f"http://0.0.0.0:{port}/hook")
    ]
    assert receiver.requests == []


def test_allow_private_is_off_by_default_and_refused_beyond_loopback() -> None:
    assert Settings(_env_file=None).webhook_allow_private is False
    assert Settings(_env_file=None, webhook_allow_private=True).webhook_allow_private is True
    with pytest.raises(ValidationError, match="VIGIL_WEBHOOK_ALLOW_PRIVATE"):
        Settings(_env_file=None, webhook_allow_private=True, http_host="0.0.0.0")
