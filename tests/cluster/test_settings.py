"""Process settings: push credentials come from VIGIL_* settings and files, checked at start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from actors.credentials import PushCredentials
from api.config import ApiConfig, ApiTunables
from cluster.settings import Settings


def test_push_credentials_are_read_from_the_configured_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = tmp_path / "AuthKey_ABC123.p8"
    key.write_text("-----BEGIN PRIVATE KEY-----\nAPNS\n-----END PRIVATE KEY-----\n")
    account = tmp_path / "fcm.json"
    account.write_text(
        json.dumps(
            {"project_id": "vigil-app", "client_email": "push@vigil.example", "private_key": "K"}
        )
    )
    for name, value in {
        "VIGIL_APNS_KEY_PATH": str(key),
        "VIGIL_APNS_KEY_ID": "ABC123",
        "VIGIL_APNS_TEAM_ID": "TEAM42",
        "VIGIL_APNS_TOPIC": "org.vigil.app",
        "VIGIL_FCM_SERVICE_ACCOUNT": str(account),
    }.items():
        monkeypatch.setenv(name, value)
    push = Settings(data_dir=tmp_path).api_config("postgresql://x/y").push
    assert isinstance(push, PushCredentials)
    assert push.apns_key_pem and push.apns_key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    assert (push.apns_key_id, push.apns_team_id, push.apns_topic) == (
        "ABC123",
        "TEAM42",
        "org.vigil.app",
    )
    assert push.apns_url == "https://api.push.apple.com"
    assert (push.fcm_project_id, push.fcm_client_email) == ("vigil-app", "push@vigil.example")
    assert push.fcm_private_key_pem == "K"
    assert push.fcm_token_url == "https://oauth2.googleapis.com/token"
    assert "PRIVATE KEY" not in repr(push) and "'K'" not in repr(push)


def test_incomplete_push_settings_are_refused_by_name(tmp_path: Path) -> None:
    key = tmp_path / "key.p8"
    key.write_text("k")
    with pytest.raises(ValueError, match="VIGIL_APNS_KEY_ID"):
        Settings(data_dir=tmp_path, apns_key_path=key).push_credentials()
    account = tmp_path / "fcm.json"
    account.write_text(json.dumps({"project_id": "p"}))
    with pytest.raises(ValueError, match="client_email, private_key"):
        Settings(data_dir=tmp_path, fcm_service_account=account).push_credentials()


def test_without_push_settings_only_the_default_endpoint_is_set(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).push_credentials() == PushCredentials()
    assert PushCredentials().apns_url == "https://api.push.apple.com"


# Values different from every default, of each tunable's type.
TUNED = {
    "VIGIL_ACCESS_TOKEN_TTL_S": ("access_token_ttl_s", "600", 600),
    "VIGIL_REFRESH_TOKEN_TTL_S": ("refresh_token_ttl_s", "86400", 86_400),
    "VIGIL_PASSWORD_RESET_TTL_S": ("password_reset_ttl_s", "900", 900),
    "VIGIL_MAX_FOLLOWERS": ("max_followers", "7", 7),
    "VIGIL_DB_POOL_MIN": ("db_pool_min", "2", 2),
    "VIGIL_DB_POOL_MAX": ("db_pool_max", "30", 30),
    "VIGIL_NOTIFIER_DB_POOL_MAX": ("notifier_db_pool_max", "8", 8),
    "VIGIL_MAX_BATCH_READINGS": ("max_batch_readings", "500", 500),
    "VIGIL_SMTP_HOST": ("smtp_host", "mail.example.org", "mail.example.org"),
    "VIGIL_LOGIN_LOCKOUT_S": ("login_lockout_s", "60", 60),
    "VIGIL_INGEST_RECHECK_S": ("ingest_recheck_s", "2.5", 2.5),
    "VIGIL_MAX_WEBHOOKS_PER_USER": ("max_webhooks_per_user", "3", 3),
    "VIGIL_SHARD_MAX_BUFFERED_ROWS": ("shard_max_buffered_rows", "2000", 2000),
    "VIGIL_SHARD_COMMIT_INTERVAL_S": ("shard_commit_interval_s", "0.25", 0.25),
    "VIGIL_SHARD_CHANNEL_PORTS": ("shard_channel_ports", "[41000, 41099]", (41000, 41099)),
}


def test_operators_set_every_api_tunable_by_its_vigil_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for env, (_, raw, _) in TUNED.items():
        monkeypatch.setenv(env, raw)
    monkeypatch.setenv("VIGIL_RATE_LIMITS", '{"export_per_user": {"count": 2, "window_s": 60}}')
    config = Settings(data_dir=tmp_path, shard_count=3).api_config("postgresql://x/y")
    assert isinstance(config, ApiConfig)
    for name, _, value in TUNED.values():
        assert getattr(config, name) == value, name
    assert (config.rate_limits.export_per_user.count, config.shard_count) == (2, 3)
    assert (
        config.rate_limits.signup_per_address
        == ApiConfig.model_fields["rate_limits"].default_factory().signup_per_address
    )  # the rest keep their defaults


def test_each_api_tunable_is_declared_once() -> None:
    """Settings inherits the API's tunables instead of repeating them, so a default or a
    bound lives in one place."""
    declared_here = set(Settings.__annotations__)
    assert not declared_here & set(ApiTunables.model_fields)
    assert set(ApiTunables.model_fields) <= set(Settings.model_fields)


def test_a_tunable_out_of_bounds_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VIGIL_ACCESS_TOKEN_TTL_S", "5")
    with pytest.raises(ValueError, match="access_token_ttl_s"):
        Settings(data_dir=tmp_path)


def test_locally_nothing_leaves_the_machine(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert (settings.bind_host, settings.replicas, settings.replicas_per_node) == (
        "127.0.0.1",
        os.cpu_count(),  # `vigil up` runs an API replica per core unless told
        None,
    )
    settings.require_cluster_database()  # the embedded database is fine on one machine


def test_on_a_cluster_defaults_assume_no_single_machine(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path, ray_address="10.0.0.5:6379", database_url="postgresql://db/vigil"
    )
    assert (settings.bind_host, settings.replicas, settings.replicas_per_node) == (
        "0.0.0.0",
        2,
        1,
    )
    assert settings.public_url == f"http://127.0.0.1:{settings.http_port}"
    explicit = Settings(data_dir=tmp_path, ray_address="10.0.0.5:6379", http_host="10.0.0.9")
    assert explicit.bind_host == "10.0.0.9"


def test_on_a_cluster_the_embedded_database_is_refused_by_name(tmp_path: Path) -> None:
    from cluster.stack import start_database

    settings = Settings(data_dir=tmp_path, ray_address="10.0.0.5:6379")
    with pytest.raises(ValueError, match="VIGIL_DATABASE_URL"):
        start_database(settings)
    assert not (tmp_path / "postgres").exists()  # nothing was started


def test_a_stack_started_from_another_picks_its_own_listener_ports(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A child `vigil up` inherits the parent stack's ingress ports: it must not reuse them
    (HAProxy would fail to listen; Serve's fallback proxy would share its port, SO_REUSEPORT);
    ports an operator set are kept."""
    from cluster.stack import (
        HAPROXY_PORTS,
        LISTENER_PORTS,
        PICKED_PORTS,
        REPLICA_PORT_BLOCK,
        REPLICA_PORT_RANGES,
        RESERVED_BLOCKS,
        pick_listener_ports,
    )

    ranges = [name for pair in REPLICA_PORT_RANGES for name in pair]
    for name in (*LISTENER_PORTS, *ranges, PICKED_PORTS):
        monkeypatch.delenv(name, raising=False)
    pick_listener_ports()
    parent = {name: os.environ[name] for name in (*LISTENER_PORTS, *ranges)}
    pick_listener_ports()  # the child, with the parent's environment
    assert all(os.environ[name] != parent[name] for name in LISTENER_PORTS)
    # Each stack's replicas listen in blocks of their own: Serve's default blocks are the
    # same for every cluster on the machine.
    blocks = [
        range(int(env[low]), int(env[high]) + 1)
        for env in (parent, os.environ)
        for low, high in REPLICA_PORT_RANGES
    ]
    assert all(len(block) == REPLICA_PORT_BLOCK for block in blocks)
    ports = [port for block in blocks for port in block]
    assert len(set(ports)) == len(ports), "replica port blocks overlap"
    # Nor do the child's listeners take a port of the parent's blocks, the block reserved
    # above the HTTP one (the replicas' read listeners) included: a random pick once did.
    reserved = [
        range(int(env[low]) + REPLICA_PORT_BLOCK, int(env[low]) + blocks * REPLICA_PORT_BLOCK)
        for env in (parent, os.environ)
        for low, blocks in RESERVED_BLOCKS.items()
    ]
    taken = set(ports) | {port for block in reserved for port in block}
    assert not taken & {int(os.environ[n]) for n in LISTENER_PORTS}
    assert not taken & {int(parent[n]) for n in LISTENER_PORTS}
    monkeypatch.delenv(PICKED_PORTS)
    monkeypatch.setenv(HAPROXY_PORTS[0], "19001")
    monkeypatch.setenv(HAPROXY_PORTS[1], "19002")
    pick_listener_ports()
    assert (os.environ[HAPROXY_PORTS[0]], os.environ[HAPROXY_PORTS[1]]) == ("19001", "19002")


def test_vigil_up_runs_an_api_replica_per_core_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIL_API_REPLICAS", raising=False)
    assert Settings(_env_file=None, data_dir=tmp_path).replicas == os.cpu_count()
    monkeypatch.setenv("VIGIL_API_REPLICAS", "3")
    assert Settings(_env_file=None, data_dir=tmp_path).replicas == 3


def test_the_delivery_retry_schedule_reaches_the_notifier_and_is_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from api.supervision import notifier_config

    monkeypatch.setenv("VIGIL_DELIVERY_RETRY_MAX_S", "30")
    monkeypatch.setenv("VIGIL_DELIVERY_RETRY_HORIZON_S", "600")
    notifier = notifier_config(Settings(data_dir=tmp_path).api_config("postgresql://x/y"))
    assert (notifier.retry.base_s, notifier.retry.max_s, notifier.retry.horizon_s) == (0.5, 30, 600)
    monkeypatch.setenv("VIGIL_DELIVERY_RETRY_BASE_S", "60")
    with pytest.raises(ValueError, match="delivery_retry_max_s must be at least the base"):
        Settings(data_dir=tmp_path)


def test_every_shard_is_started_with_the_operators_shard_settings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``vigil up`` and ``serve deploy`` (from the settings) and a replica that restarts a lost
    shard (from its ``ApiConfig``) start shards with the same configuration."""
    for env in ("VIGIL_SHARD_MAX_BUFFERED_ROWS", "VIGIL_SHARD_COMMIT_INTERVAL_S"):
        monkeypatch.setenv(env, TUNED[env][1])
    monkeypatch.setenv("VIGIL_SHARD_CHANNEL_PORTS", "[41000, 41099]")
    settings = Settings(data_dir=tmp_path, shard_count=3)
    from_settings = settings.shard_config("postgresql://x/y")
    config = settings.api_config("postgresql://x/y")
    from_replica = config.shard_config_for(config.database_url, config.shard_count)
    assert from_settings == from_replica
    assert (
        from_settings.shard_count,
        from_settings.max_buffered_rows,
        from_settings.min_commit_interval_s,
        from_settings.channel_ports,
    ) == (3, 2000, 0.25, (41000, 41099))


@pytest.mark.parametrize("ports", ["[41099, 41000]", "[80, 90]", "[41000, 70000]", "[41000]"])
def test_a_channel_port_range_that_is_no_range_is_refused_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ports: str
) -> None:
    monkeypatch.setenv("VIGIL_SHARD_CHANNEL_PORTS", ports)
    with pytest.raises(ValueError, match="shard_channel_ports"):
        Settings(data_dir=tmp_path)
