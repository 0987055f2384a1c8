"""Session fixtures: a throwaway PostgreSQL, a local Ray and the Serve app, started lazily.

Tests that need none of them (algorithms, simulators) start none of them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from hypothesis import settings

from storage.embedded import EmbeddedPostgres, free_port, throwaway_postgres
from tests.helpers import CHANNEL_PORTS, Account, new_database, sign_up
from tests.mail import SmtpServer

# Property tests: no per-example deadline (the machine is shared with Ray and PostgreSQL);
# in CI (CI=true) the examples are derandomised so a run is reproducible.
settings.register_profile("vigil", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "vigil")


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    with throwaway_postgres("vigil-test-", durable=False) as server:
        yield server


@pytest.fixture(scope="session")
def database_url(pg: EmbeddedPostgres) -> str:
    from storage.migrate import migrate

    migrate(pg.url())
    return pg.url()


@pytest.fixture
def fresh_database_url(pg: EmbeddedPostgres) -> str:
    """A new, migrated database of its own on the test server (for tests of what happens
    on first start, such as the first signing key)."""
    return new_database(pg.url())


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    """A real local SMTP server (aiosmtpd); the stack sends its email here."""
    server = SmtpServer(free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


# Rate limits per client address (api/config.py RateLimits)
PER_ADDRESS = (
    "signup_per_address",
    "login_per_address",
    "reset_per_address",
    "link_open_per_address",
)


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[str]:
    """A real local OpenID Connect provider (oidc-provider-mock); its issuer URL. The stack
    offers single sign-on through it as provider "corp" for emails @corp.example."""
    from oidc_provider_mock import run_server_in_thread

    with run_server_in_thread(free_port(), require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="session")
def stack(
    database_url: str,
    tmp_path_factory: pytest.TempPathFactory,
    smtp: SmtpServer,
    oidc_provider: str,
):
    from api.config import Rate, RateLimits, SsoProvider
    from cluster.settings import Settings
    from cluster.stack import start_stack

    settings = Settings(
        data_dir=tmp_path_factory.mktemp("vigil-data"),
        http_port=free_port(),
        shard_count=2,
        namespace=f"vigil-test-{uuid.uuid4().hex[:8]}",
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        # Every test logs in from 127.0.0.1: a per-address lockout would stop the suite.
        login_max_failures_per_address=100_000,
        ingest_recheck_s=1.0,  # a revoked streaming device is stopped within the test
        # argon2id at its cheapest: the suite signs up hundreds of accounts, each hashed and
        # verified (0.3 s of CPU at production cost). tests/security/test_passwords.py holds
        # the production profile, the refusal in prod and the upgrade of other parameters.
        password_hashing="cheapest",
        # tests/e2e/test_delivery.py's webhook receivers listen on 127.0.0.1.
        webhook_allow_private=True,
        # The shards' ingest channels within a range, as under a strict network policy
        # (below Linux's ephemeral ports and Serve's, above Ray's worker ports).
        shard_channel_ports=CHANNEL_PORTS,
        # ...nor per-address rate limits (tests/security/test_rate_limits.py tests them).
        rate_limits=RateLimits(**{name: Rate(count=100_000, window_s=60) for name in PER_ADDRESS}),
        sso_providers=[
            SsoProvider(
                name="corp",
                issuer=oidc_provider,
                client_id="vigil-test",
                client_secret="vigil-test-secret",
                allowed_domains=["corp.example"],
            )
        ],
    )
    running = start_stack(settings, database_url=database_url)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def db(database_url: str) -> Iterator[psycopg.Connection]:
    with psycopg.connect(database_url, autocommit=True) as conn:
        yield conn


@pytest.fixture
def client(stack) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=stack.url, timeout=60) as c:
        yield c


@pytest.fixture
def account(client: httpx.Client) -> Account:
    return sign_up(client)
