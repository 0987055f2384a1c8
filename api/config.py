"""What the API needs to know to run; built from the process settings by ``cluster``."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


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
    push: dict[str, str] = Field(
        default_factory=dict,
        description="APNs/FCM credentials for the notifier (NotifierConfig's apns_*/fcm_* fields)",
    )
    ingest_recheck_s: float = Field(
        10.0, gt=0, description="How often a streaming device's credential is checked again"
    )
    sso_providers: list[SsoProvider] = Field(
        default_factory=list, description="OpenID Connect providers users may sign in with"
    )
