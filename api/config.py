"""What the API needs to know to run; built from the process settings by ``cluster``."""

from __future__ import annotations

from pydantic import BaseModel, Field


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


class ApiConfig(BaseModel):
    database_url: str = Field(description="PostgreSQL URL (asyncpg) for the API's reads")
    shard_count: int = Field(2, ge=1)
    namespace: str = "vigil"
    issuer: str = "http://127.0.0.1:8000"
    access_token_ttl_s: int = Field(15 * 60, ge=60)
    refresh_token_ttl_s: int = Field(30 * 86_400, ge=3600)
    max_batch_readings: int = Field(10_000, ge=1)
    db_pool_min: int = 1
    db_pool_max: int = 10
    max_followers: int = Field(
        20, ge=1, description="Active followers plus open invitations a profile may have"
    )
    # Login rate limiting: failures within the window lock the account/address for lockout_s.
    login_max_failures_per_account: int = Field(20, ge=1)
    login_max_failures_per_address: int = Field(100, ge=1)
    login_window_s: int = Field(15 * 60, ge=1)
    login_lockout_s: int = Field(15 * 60, ge=1)
    password_reset_ttl_s: int = Field(3600, ge=60)
    # Outgoing email (password reset, signup notices); no host: messages are only logged.
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "Vigil <no-reply@localhost>"
    smtp_username: str | None = None
    smtp_password: str | None = Field(None, repr=False)
    smtp_ca_file: str | None = Field(None, description="Extra CA to trust for the SMTP server")
    smtp_allow_plaintext: bool = Field(
        False, description="Send email without TLS to a server that is not on loopback"
    )
    push: dict[str, str] = Field(
        default_factory=dict,
        description="APNs/FCM credentials for the notifier (NotifierConfig's apns_*/fcm_* fields)",
    )
    ingest_recheck_s: float = Field(
        10.0, gt=0, description="How often a streaming device's credential is checked again"
    )
    webhook_allow_private: bool = Field(
        False, description="Webhooks may point at loopback/private addresses (local tests only)"
    )
    max_webhooks_per_user: int = Field(10, ge=1, description="Webhooks one account may register")
    webhook_secret_overlap_s: int = Field(
        86_400, ge=0, description="How long a rotated webhook secret keeps signing"
    )
    web_dir: str | None = Field(
        None, description="The built web app (web/dist); None: the one beside the code"
    )
    rate_limits: RateLimits = Field(default_factory=RateLimits)
