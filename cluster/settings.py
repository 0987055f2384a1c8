"""Process settings, from ``VIGIL_*`` environment variables (and a ``.env`` file)."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actors.shard import ShardConfig
from api.config import ApiConfig, RateLimits
from storage.embedded import DEFAULT_PORT, default_data_dir

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=".env", extra="ignore")

    database_url: str | None = Field(
        None, description="PostgreSQL URL; unset starts the embedded local PostgreSQL"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    db_port: int = Field(DEFAULT_PORT, description="Port of the embedded PostgreSQL")
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    shard_count: int = Field(2, ge=1, description="DeviceShard Ray actors hosting device actors")
    api_replicas: int = Field(
        default_factory=lambda: os.cpu_count() or 1,
        ge=1,
        description="Serve replicas of the HTTP API (default: one per core)",
    )
    ray_address: str | None = Field(
        None, description="Join this Ray cluster instead of a local one"
    )
    namespace: str = "vigil"
    haproxy_ingress: bool = Field(
        True,
        description="Serve HTTP through Ray Serve's HAProxy ingress (C) instead of its Python"
        " proxy: about twice the ingest throughput.",
    )
    access_token_ttl_s: int = 15 * 60
    max_batch_readings: int = 10_000
    smtp_host: str | None = Field(None, description="SMTP server for outgoing email; unset: log")
    smtp_port: int = 25
    smtp_from: str = "Vigil <no-reply@localhost>"
    login_max_failures_per_account: int = Field(20, ge=1)
    login_max_failures_per_address: int = Field(100, ge=1)
    login_window_s: int = Field(15 * 60, ge=1)
    login_lockout_s: int = Field(15 * 60, ge=1)
    ingest_recheck_s: float = Field(
        10.0, gt=0, description="How often a streaming device's credential is checked again"
    )
    # Mobile push. APNs: the .p8 token-signing key and its ids; FCM HTTP v1: the service
    # account JSON file. Unset: push is not configured and push deliveries are logged failed.
    apns_key_path: Path | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = Field(None, description="The iOS app's bundle id")
    apns_url: str = "https://api.push.apple.com"
    fcm_service_account: Path | None = None
    webhook_allow_private: bool = Field(
        False,
        description="Let webhooks reach loopback and private-network addresses (127/8, 10/8,"
        " 172.16/12, 192.168/16, fc00::/7, localhost): for local test receivers only; never"
        " in production. Link-local (cloud metadata) and other special addresses stay refused.",
    )
    max_webhooks_per_user: int = Field(10, ge=1, description="Webhooks one account may register")

    @model_validator(mode="after")
    def private_webhooks_only_locally(self) -> Settings:
        """Until deployments declare their environment, a stack that serves beyond this
        machine (a non-loopback VIGIL_HTTP_HOST) refuses VIGIL_WEBHOOK_ALLOW_PRIVATE."""
        if self.webhook_allow_private and self.http_host not in LOOPBACK_HOSTS:
            raise ValueError(
                "VIGIL_WEBHOOK_ALLOW_PRIVATE is for local test stacks only: it needs"
                f" VIGIL_HTTP_HOST on loopback ({', '.join(LOOPBACK_HOSTS)}), not {self.http_host}"
            )
        return self

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of proxies in front of Vigil's ingress whose"
        " X-Forwarded-For is kept (JSON list); none: the ingress records the connecting peer",
    )

    rate_limits: RateLimits = Field(
        default_factory=RateLimits,
        description="Limits on expensive work (JSON, e.g. VIGIL_RATE_LIMITS="
        '\'{"signup_per_address": {"count": 5, "window_s": 3600}}\')',
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in value]

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def public_url(self) -> str:
        return f"http://{self.http_host}:{self.http_port}"

    def shard_config(self, database_url: str) -> ShardConfig:
        return ShardConfig(database_url=database_url, shard_count=self.shard_count)

    def api_config(self, database_url: str) -> ApiConfig:
        return ApiConfig(
            database_url=database_url,
            shard_count=self.shard_count,
            namespace=self.namespace,
            issuer=self.public_url,
            access_token_ttl_s=self.access_token_ttl_s,
            max_batch_readings=self.max_batch_readings,
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_from=self.smtp_from,
            login_max_failures_per_account=self.login_max_failures_per_account,
            login_max_failures_per_address=self.login_max_failures_per_address,
            login_window_s=self.login_window_s,
            login_lockout_s=self.login_lockout_s,
            ingest_recheck_s=self.ingest_recheck_s,
            push=self.push_credentials(),
            webhook_allow_private=self.webhook_allow_private,
            max_webhooks_per_user=self.max_webhooks_per_user,
            rate_limits=self.rate_limits,
        )

    def push_credentials(self) -> dict[str, str]:
        """The notifier's APNs/FCM fields, read from the configured key files."""
        out = {"apns_url": self.apns_url}
        if self.apns_key_path is not None:
            if not (self.apns_key_id and self.apns_team_id and self.apns_topic):
                raise ValueError(
                    "VIGIL_APNS_KEY_PATH needs VIGIL_APNS_KEY_ID, VIGIL_APNS_TEAM_ID and"
                    " VIGIL_APNS_TOPIC"
                )
            out |= {
                "apns_key_pem": self.apns_key_path.read_text(),
                "apns_key_id": self.apns_key_id,
                "apns_team_id": self.apns_team_id,
                "apns_topic": self.apns_topic,
            }
        if self.fcm_service_account is not None:
            account = json.loads(self.fcm_service_account.read_text())
            missing = {"project_id", "client_email", "private_key"} - account.keys()
            if missing:
                raise ValueError(
                    f"VIGIL_FCM_SERVICE_ACCOUNT {self.fcm_service_account} lacks"
                    f" {', '.join(sorted(missing))}"
                )
            out |= {
                "fcm_project_id": account["project_id"],
                "fcm_client_email": account["client_email"],
                "fcm_private_key_pem": account["private_key"],
                "fcm_token_url": account.get("token_uri", "https://oauth2.googleapis.com/token"),
            }
        return out
