"""Process settings, from ``VIGIL_*`` environment variables, a ``.env`` file and the settings
file of the environment (``VIGIL_ENV``: cluster/env/<env>.env), in that order of precedence."""

from __future__ import annotations

import ipaddress
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from actors.credentials import PushCredentials
from api.config import ApiConfig, ApiTunables
from storage.embedded import DEFAULT_PORT, default_data_dir

if TYPE_CHECKING:  # the shard module imports Ray: not for every `vigil` command
    from actors.shard import ShardConfig

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
ENVIRONMENTS_DIR = Path(__file__).with_name("env")
Environment = Literal["dev", "staging", "prod"]


def environment_files(environment: str) -> tuple[Path, ...]:
    """The settings files of ``environment``, later ones winning: its file, then ``.env``."""
    own = ENVIRONMENTS_DIR / f"{environment}.env"
    if not own.is_file():
        known = sorted(p.stem for p in ENVIRONMENTS_DIR.glob("*.env"))
        raise ValueError(f"VIGIL_ENV={environment!r}: no {own}; one of {', '.join(known)}")
    return (own, Path(".env"))


class Settings(BaseSettings, ApiTunables):
    """Every ``VIGIL_*`` setting. The API's tunables are inherited from ``ApiTunables``
    (declared once, there); the rest concern the whole process or cluster."""

    model_config = SettingsConfigDict(env_prefix="VIGIL_", env_file=".env", extra="ignore")

    def __init__(self, **values: Any) -> None:
        if "_env_file" not in values:
            values["_env_file"] = environment_files(os.environ.get("VIGIL_ENV", "dev"))
        super().__init__(**values)

    database_url: str | None = Field(
        None, description="PostgreSQL URL; unset starts the embedded local PostgreSQL"
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    db_port: int = Field(DEFAULT_PORT, description="Port of the embedded PostgreSQL")
    http_host: str | None = Field(
        None, description="HTTP bind address; unset: loopback locally, 0.0.0.0 on a cluster"
    )
    http_port: int = 8000
    shard_count: int = Field(2, ge=1, description="DeviceShard Ray actors hosting device actors")
    api_replicas: int | None = Field(
        None,
        ge=1,
        description="Serve replicas of the HTTP API; unset: one per core locally, 2 on a cluster",
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
    proxy_location: str = Field(
        "EveryNode",
        description="Where Serve runs HTTP proxies: EveryNode, HeadOnly (e.g. several Ray"
        " nodes on one machine, which would all bind the same port) or Disabled",
    )
    # Mobile push. APNs: the .p8 token-signing key and its ids; FCM HTTP v1: the service
    # account JSON file. Unset: push is not configured and push deliveries are logged failed.
    apns_key_path: Path | None = None
    apns_key_id: str | None = None
    apns_team_id: str | None = None
    apns_topic: str | None = Field(None, description="The iOS app's bundle id")
    apns_url: str = "https://api.push.apple.com"
    fcm_service_account: Path | None = None
    metrics_export_port: int | None = Field(
        None,
        description="Port of this node's Prometheus endpoint (Ray's metrics agent; every"
        " Vigil process's metrics); unset: Ray picks one (`vigil metrics targets` lists it)",
    )
    # Backups, WAL archiving and the standby of the embedded PostgreSQL (docs/operations.md).
    backup_target: str | None = Field(
        None,
        description="Directory (or file:// URL), or s3://bucket/prefix[?endpoint=URL&region=NAME]"
        " (credentials: the AWS_* environment), for base backups and archived WAL",
    )
    backup_keep: int = Field(7, ge=1, description="Base backups kept (with the WAL they need)")
    backup_encryption_key: SecretStr | None = Field(
        None, description="Encrypts backups and WAL (AES-256-GCM); `vigil db backup-key` makes one"
    )
    backup_archive_timeout_s: int = Field(
        60, ge=1, description="A WAL segment is archived at least this often (restore loses less)"
    )
    standby_port: int = Field(DEFAULT_PORT + 1, description="Port of `vigil db standby`")
    synchronous_standby: bool = Field(
        False, description="Commits (and acknowledgements) wait until the standby has them"
    )

    @model_validator(mode="after")
    def private_webhooks_only_locally(self) -> Settings:
        """Until deployments declare their environment, a stack that serves beyond this
        machine (a non-loopback VIGIL_HTTP_HOST) refuses VIGIL_WEBHOOK_ALLOW_PRIVATE."""
        if self.webhook_allow_private and self.bind_host not in LOOPBACK_HOSTS:
            raise ValueError(
                "VIGIL_WEBHOOK_ALLOW_PRIVATE is for local test stacks only: it needs"
                f" VIGIL_HTTP_HOST on loopback ({', '.join(LOOPBACK_HOSTS)}), not {self.bind_host}"
            )
        return self

    trusted_proxies: list[str] = Field(
        default_factory=list,
        description="Addresses or CIDRs of proxies in front of Vigil's ingress whose"
        " X-Forwarded-For is kept (JSON list); none: the ingress records the connecting peer",
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        return [str(ipaddress.ip_network(v.strip(), strict=False)) for v in value]

    env: Environment = Field(
        "dev", description="dev, staging or prod; prod refuses unsafe settings at start-up"
    )
    # Automatic shard rebalancing (actors.balancer): shards move onto nodes that join.
    shard_rebalance: bool = Field(
        True,
        description="On a cluster (VIGIL_RAY_ADDRESS), move shards onto nodes that join it"
        " (off: only by hand with `vigil shards rebalance`); one machine has no balancer",
    )
    shard_rebalance_poll_s: float = Field(
        10.0, gt=0, description="How often the balancer reads Ray's node table"
    )
    shard_rebalance_settle_s: float = Field(
        60.0, ge=0, description="How long a node must stay alive before shards move onto it"
    )
    shard_rebalance_cooldown_s: float = Field(
        120.0, ge=0, description="The least time between two rebalancing moves"
    )

    def pinned_api_replicas(self) -> int | None:
        """VIGIL_API_REPLICAS when set; otherwise None: the Serve config autoscales."""
        return self.api_replicas if "api_replicas" in self.model_fields_set else None

    # -- on a Ray cluster (VIGIL_RAY_ADDRESS set) nothing may assume one machine ----------

    @property
    def on_cluster(self) -> bool:
        return self.ray_address is not None

    @property
    def bind_host(self) -> str:
        return self.http_host or ("0.0.0.0" if self.on_cluster else "127.0.0.1")

    @property
    def replicas(self) -> int:
        return self.api_replicas or (2 if self.on_cluster else os.cpu_count() or 1)

    @property
    def replicas_per_node(self) -> int | None:
        """At most one API replica per node on a cluster (losing a node loses one)."""
        return 1 if self.on_cluster else None

    def require_cluster_database(self) -> None:
        """The embedded database listens on this machine's loopback: shards on other nodes
        could not reach it."""
        if self.on_cluster and not self.database_url:
            raise ValueError(
                "VIGIL_RAY_ADDRESS is set but VIGIL_DATABASE_URL is not: on a Ray cluster every"
                " node must reach the database, so set VIGIL_DATABASE_URL to a PostgreSQL"
                " address they all reach (the embedded database listens on 127.0.0.1)"
            )

    @property
    def run_dir(self) -> Path:
        return self.data_dir / "run"

    @property
    def log_dir(self) -> Path:
        """Vigil's own log files (Ray's are in its session directory)."""
        return self.data_dir / "logs"

    @property
    def public_url(self) -> str:
        host = self.bind_host
        return f"http://{'127.0.0.1' if host in ('0.0.0.0', '::') else host}:{self.http_port}"

    def shard_config(self, database_url: str) -> ShardConfig:
        return self.shard_config_for(database_url, self.shard_count)

    def api_config(self, database_url: str) -> ApiConfig:
        tuned = {name: getattr(self, name) for name in ApiTunables.model_fields}
        return ApiConfig(
            **tuned,
            database_url=database_url,
            shard_count=self.shard_count,
            namespace=self.namespace,
            issuer=self.public_url,
            push=self.push_credentials(),
        )

    def push_credentials(self) -> PushCredentials:
        """The notifier's APNs/FCM credentials, read from the configured key files."""
        return PushCredentials(apns_url=self.apns_url, **self._apns(), **self._fcm())

    def _apns(self) -> dict[str, str]:
        if self.apns_key_path is None:
            return {}
        if not (self.apns_key_id and self.apns_team_id and self.apns_topic):
            raise ValueError(
                "VIGIL_APNS_KEY_PATH needs VIGIL_APNS_KEY_ID, VIGIL_APNS_TEAM_ID and"
                " VIGIL_APNS_TOPIC"
            )
        return {
            "apns_key_pem": self.apns_key_path.read_text(),
            "apns_key_id": self.apns_key_id,
            "apns_team_id": self.apns_team_id,
            "apns_topic": self.apns_topic,
        }

    def _fcm(self) -> dict[str, str]:
        if self.fcm_service_account is None:
            return {}
        account = json.loads(self.fcm_service_account.read_text())
        missing = {"project_id", "client_email", "private_key"} - account.keys()
        if missing:
            raise ValueError(
                f"VIGIL_FCM_SERVICE_ACCOUNT {self.fcm_service_account} lacks"
                f" {', '.join(sorted(missing))}"
            )
        return {
            "fcm_project_id": account["project_id"],
            "fcm_client_email": account["client_email"],
            "fcm_private_key_pem": account["private_key"],
            "fcm_token_url": account.get("token_uri", "https://oauth2.googleapis.com/token"),
        }
