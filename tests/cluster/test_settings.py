"""Process settings: push credentials come from VIGIL_* settings and files, checked at start."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

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
    assert push["apns_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")
    assert (push["apns_key_id"], push["apns_team_id"], push["apns_topic"]) == (
        "ABC123",
        "TEAM42",
        "org.vigil.app",
    )
    assert push["apns_url"] == "https://api.push.apple.com"
    assert (push["fcm_project_id"], push["fcm_client_email"]) == ("vigil-app", "push@vigil.example")
    assert push["fcm_token_url"] == "https://oauth2.googleapis.com/token"


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
    assert Settings(data_dir=tmp_path).push_credentials() == {
        "apns_url": "https://api.push.apple.com"
    }


def test_vigil_up_runs_an_api_replica_per_core_unless_told(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("VIGIL_API_REPLICAS", raising=False)
    assert Settings(_env_file=None, data_dir=tmp_path).api_replicas == os.cpu_count()
    monkeypatch.setenv("VIGIL_API_REPLICAS", "3")
    assert Settings(_env_file=None, data_dir=tmp_path).api_replicas == 3
