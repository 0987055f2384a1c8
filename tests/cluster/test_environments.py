"""VIGIL_ENV: a settings file per environment, and prod refusing unsafe settings by name."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from cluster.cli import app
from cluster.environments import UnsafeSettings, check_environment, unsafe_settings
from cluster.settings import Settings
from cluster.stack import start_stack

SAFE_URL = "postgresql://vigil:Xk2p9-long-random@db.internal:5432/vigil"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("VIGIL_ENV", "VIGIL_DATABASE_URL", "VIGIL_HTTP_HOST", "VIGIL_SHARD_COUNT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray ./.env
    monkeypatch.setenv("VIGIL_DATA_DIR", str(tmp_path / "data"))


@pytest.mark.parametrize(
    ("environment", "shards", "host"),
    [
        ("dev", 2, "127.0.0.1"),
        ("staging", 4, "0.0.0.0"),
        ("prod", 8, "0.0.0.0"),
    ],
)
def test_each_environment_reads_its_settings_file(
    monkeypatch: pytest.MonkeyPatch, environment: str, shards: int, host: str
) -> None:
    monkeypatch.setenv("VIGIL_ENV", environment)
    settings = Settings()
    assert (settings.env, settings.shard_count, settings.bind_host) == (environment, shards, host)


def test_environment_variables_win_over_the_file(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    monkeypatch.setenv("VIGIL_SHARD_COUNT", "12")
    assert Settings().shard_count == 12


def test_an_unknown_environment_names_the_known_ones(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "production")
    with pytest.raises(ValueError, match="dev, prod, staging"):
        Settings()


def test_prod_names_every_unsafe_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    monkeypatch.setenv("VIGIL_HTTP_HOST", "127.0.0.1")
    problems = unsafe_settings(Settings(), demo=True)
    assert [p.split(":")[0].split(" ")[0] for p in problems] == [
        "--demo",
        "VIGIL_DATABASE_URL",
        "VIGIL_HTTP_HOST=127.0.0.1",
    ]


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://vigil:vigil@db.internal/vigil", "default database password"),
        ("postgresql://vigil@db.internal/vigil", "default database password"),
        ("postgresql://vigil:Xk2p9-long-random@127.0.0.1/vigil", "loopback host"),
    ],
)
def test_prod_refuses_a_default_password_or_loopback_database(
    monkeypatch: pytest.MonkeyPatch, url: str, named: str
) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    monkeypatch.setenv("VIGIL_DATABASE_URL", url)
    with pytest.raises(UnsafeSettings, match=named):
        check_environment(Settings())


def test_prod_with_safe_settings_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    monkeypatch.setenv("VIGIL_DATABASE_URL", SAFE_URL)
    assert unsafe_settings(Settings()) == []


def test_dev_allows_the_embedded_database_and_the_demo() -> None:
    assert unsafe_settings(Settings(), demo=True) == []


def test_start_stack_refuses_prod_before_starting_anything(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    with pytest.raises(UnsafeSettings, match="VIGIL_DATABASE_URL unset"):
        start_stack(Settings())
    assert not (tmp_path / "data" / "postgres").exists()


def test_vigil_up_in_prod_exits_with_the_reasons(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    monkeypatch.setenv("VIGIL_DATABASE_URL", SAFE_URL)
    result = CliRunner().invoke(app, ["up", "--demo"])
    assert result.exit_code == 2
    assert "refuses to start" in result.output
    assert "--demo" in result.output
    assert "VIGIL_DATABASE_URL" not in result.output
