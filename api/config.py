"""What the API needs to know to run; built from the process settings by ``cluster``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from actors.credentials import PushCredentials
from algorithms.delivery import RetrySchedule

if TYPE_CHECKING:  # the shard module imports Ray
    from actors.shard import ShardConfig

# argon2id's parameters by name (api.passwords.PROFILES); production's is the library default.
PasswordHashing = Literal["rfc9106-low-memory", "cheapest"]
PRODUCTION_PASSWORD_HASHING: PasswordHashing = "rfc9106-low-memory"


class SsoProvider(BaseModel):
    """An organisation's OpenID Connect provider (Keycloak, Auth0, Cognito, Entra ID, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(
        pattern=r"^[a-z0-9][a-z0-9-]{0,39}$",
        description="Slug in the sign-in URLs: /v1/auth/sso/<name>/login",
        examples=["acme"],
    )
    issuer: str = Field(
        description="The provider's issuer URL (its discovery document is read from"
        " <issuer>/.well-known/openid-configuration)",
        examples=["https://login.acme.example/realms/staff"],
    )
    client_id: str = Field(min_length=1)
    client_secret: str | None = Field(
        None, description="Unset for a public client (PKCE only)", repr=False
    )
    allowed_domains: list[str] = Field(
        min_length=1,
        description="Email domains that may sign in through this provider",
        examples=[["acme.example"]],
    )
    scope: str = "openid email profile"


class Rate(BaseModel):
    """At most ``count`` requests per ``window_s`` seconds (a fixed window)."""

    count: int = Field(ge=1)
    window_s: int = Field(ge=1)


class RateLimits(BaseModel):
    """Limits on expensive work, per client address, user, recipient or report link; past
    one the answer is 429 with Retry-After (an email over its cap is not sent)."""

    signup_per_address: Rate = Rate(count=10, window_s=3600)
    login_per_address: Rate = Rate(count=60, window_s=60)
    reset_per_address: Rate = Rate(count=10, window_s=3600)
    emails_per_recipient: Rate = Field(
        Rate(count=3, window_s=3600),
        description="Sign-up notices and reset emails to one address",
    )
    export_per_user: Rate = Rate(count=5, window_s=3600)
    report_per_user: Rate = Field(Rate(count=60, window_s=3600), description="JSON and PDF")
    link_open_per_address: Rate = Rate(count=30, window_s=60)
    link_open_per_link: Rate = Rate(count=60, window_s=3600)
    password_hashing_threads: int = Field(
        2, ge=1, description="argon2 hashes computed at once per replica; the rest wait"
    )
    pdf_waiting_max: int = Field(
        4, ge=0, description="PDFs waiting to render per replica (one renders at a time)"
    )


class ApiTunables(BaseModel):
    """What an operator may tune in the API and the shards it starts, declared once:
    ``cluster.settings.Settings`` inherits these fields (each is ``VIGIL_<NAME>``) and hands
    them to ``ApiConfig``."""

    access_token_ttl_s: int = Field(15 * 60, ge=60, description="Lifetime of an access token")
    refresh_token_ttl_s: int = Field(
        30 * 86_400, ge=3600, description="Lifetime of a refresh token (a login session)"
    )
    max_batch_readings: int = Field(10_000, ge=1)
    db_pool_min: int = Field(1, ge=0, description="Database connections each replica keeps open")
    db_pool_max: int = Field(10, ge=1, description="Database connections per replica at most")
    notifier_db_pool_max: int = Field(
        5, ge=1, description="Database connections of the alert notifier at most"
    )
    max_followers: int = Field(
        20, ge=1, description="Active followers plus open invitations a profile may have"
    )
    # Login rate limiting: failures within the window lock the account/address for lockout_s.
    login_max_failures_per_account: int = Field(20, ge=1)
    login_max_failures_per_address: int = Field(100, ge=1)
    login_window_s: int = Field(15 * 60, ge=1)
    login_lockout_s: int = Field(15 * 60, ge=1)
    password_reset_ttl_s: int = Field(
        3600, ge=60, description="How long a password-reset link stays valid"
    )
    # Outgoing email (password reset, signup notices); no host: messages are only logged.
    smtp_host: str | None = Field(None, description="SMTP server for outgoing email; unset: log")
    smtp_port: int = 25
    smtp_from: str = "Vigil <no-reply@localhost>"
    smtp_username: str | None = Field(None, description="SMTP login (sent only over TLS)")
    smtp_password: str | None = Field(None, repr=False)
    smtp_ca_file: str | None = Field(
        None, description="PEM file of a CA to trust for the SMTP server (a private relay)"
    )
    smtp_allow_plaintext: bool = Field(
        False,
        description="Send email (reset tokens, alert texts) without TLS to an SMTP server that"
        " is not on loopback and offers no STARTTLS: never in production",
    )
    password_hashing: PasswordHashing = Field(
        PRODUCTION_PASSWORD_HASHING,
        description="argon2id's parameters: RFC 9106's low-memory profile (3 passes over"
        " 64 MiB); `cheapest` is argon2-cffi's profile for test suites, which keep no real"
        " password: refused by VIGIL_ENV=prod",
    )
    ingest_recheck_s: float = Field(
        10.0, gt=0, description="How often a streaming device's credential is checked again"
    )
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks reach loopback and private-network addresses (127/8, 10/8,"
        " 172.16/12, 192.168/16, fc00::/7, localhost): for local test receivers only; never"
        " in production. Link-local (cloud metadata) and other special addresses stay refused.",
    )
    max_webhooks_per_user: int = Field(10, ge=1, description="Webhooks one account may register")
    webhook_secret_overlap_s: int = Field(
        86_400,
        ge=0,
        description="After a webhook secret is rotated, how long the previous one keeps"
        " signing beside the new one",
    )
    rate_limits: RateLimits = Field(
        default_factory=RateLimits,
        description="Limits on expensive work (JSON, e.g. VIGIL_RATE_LIMITS="
        '\'{"signup_per_address": {"count": 5, "window_s": 3600}}\')',
    )
    sso_providers: list[SsoProvider] = Field(
        default_factory=list,
        description="JSON list of OpenID Connect providers (name, issuer, client_id,"
        " client_secret, allowed_domains): docs/operations.md, Single sign-on",
    )
    router_hold_ms: float = Field(
        20.0,
        ge=0,
        le=50,
        description="How long a replica may hold a call to a busy shard for more batches to"
        " join it (only while batches come at least two per window; 0: never)",
    )
    # Alert deliveries that fail for now (receiver down, 5xx, 429) are retried from the
    # database: base * factor ** n seconds apart, at most max, until horizon after the first.
    delivery_retry_base_s: float = Field(0.5, gt=0, description="First wait before a retry")
    delivery_retry_factor: float = Field(2.0, ge=1, description="Each wait is this times longer")
    delivery_retry_max_s: float = Field(120.0, gt=0, description="Longest wait between attempts")
    delivery_retry_horizon_s: float = Field(
        3600.0,
        gt=0,
        description="No attempt later than this after the first: the delivery is then given up"
        " (shown as gave_up in the alert's deliveries)",
    )
    delivery_queue_poll_s: float = Field(
        5.0, gt=0, description="How often the notifier looks for deliveries due again"
    )

    # The shards: every one is started with these, wherever it is started (shard_config_for).
    shard_max_buffered_rows: int = Field(
        500_000,
        ge=100,
        description="Rows a shard keeps waiting for the database before it answers 503"
        " (back-pressure: bounded memory while the database is slow or down)",
    )
    shard_commit_interval_s: float = Field(
        0.1,
        ge=0,
        le=1,
        description="The least time between the starts of a shard's commits, unless 1,000 rows"
        " wait: readings that arrive meanwhile share the next commit (less CPU per reading;"
        " acknowledgements wait up to this long more)",
    )
    shard_channel_ports: tuple[int, int] | None = Field(
        None,
        description="The ports a shard's ingest channel may listen on, [first, last] (JSON),"
        " for a network policy that allows only those between the nodes; unset: a port the"
        " system picks from its ephemeral range",
    )

    @model_validator(mode="after")
    def _delivery_retry_schedule(self) -> ApiTunables:
        self.delivery_retry()  # refuses an inconsistent schedule, naming the setting
        return self

    def delivery_retry(self) -> RetrySchedule:
        """The alert notifier's retry schedule, from the delivery_retry_* settings."""
        return RetrySchedule(
            base_s=self.delivery_retry_base_s,
            factor=self.delivery_retry_factor,
            max_s=self.delivery_retry_max_s,
            horizon_s=self.delivery_retry_horizon_s,
        )

    @field_validator("shard_channel_ports")
    @classmethod
    def _port_range(cls, value: tuple[int, int] | None) -> tuple[int, int] | None:
        if value is not None and not 1024 <= value[0] <= value[1] <= 65535:
            raise ValueError(f"{list(value)}: [first, last] with 1024 <= first <= last <= 65535")
        return value

    def shard_config_for(self, database_url: str, shard_count: int) -> ShardConfig:
        """The configuration every shard is started with (``vigil up``, ``serve deploy``, a
        replica restarting a lost shard, a rescale): these tunables, the database, the count."""
        from actors.shard import ShardConfig  # imports Ray: only where shards are started

        return ShardConfig(
            database_url=database_url,
            shard_count=shard_count,
            max_buffered_rows=self.shard_max_buffered_rows,
            min_commit_interval_s=self.shard_commit_interval_s,
            channel_ports=self.shard_channel_ports,
        )


class ApiConfig(ApiTunables):
    """What a replica is started with: the tunables plus what the cluster decides."""

    database_url: str = Field(description="PostgreSQL URL (asyncpg) for the API's reads")
    shard_count: int = Field(2, ge=1)
    namespace: str = "vigil"
    issuer: str = "http://127.0.0.1:8000"
    push: PushCredentials = Field(
        default_factory=PushCredentials, description="APNs/FCM credentials for the notifier"
    )
    web_dir: str | None = Field(
        None, description="The built web app (web/dist); None: the one beside the code"
    )
