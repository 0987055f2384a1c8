"""argon2id's parameters (``VIGIL_PASSWORD_HASHING``): production's by default, the test
suite's cheapest profile refused by ``VIGIL_ENV=prod``, and each profile's hashes verified,
re-hashed when made with other parameters, and an unknown email refused."""

from __future__ import annotations

import asyncio

import pytest
from argon2 import PasswordHasher, extract_parameters, profiles

from api import passwords
from api.config import ApiTunables
from cluster.environments import UnsafeSettings, check_environment, unsafe_settings
from cluster.settings import Settings


@pytest.fixture
def profile_restored():
    before = passwords._hashing.profile
    yield
    passwords.configure(passwords.pool.threads, before)


def test_production_parameters_are_rfc_9106_low_memory_by_default(profile_restored) -> None:
    assert ApiTunables().password_hashing == "rfc9106-low-memory"
    assert Settings(_env_file=None).password_hashing == "rfc9106-low-memory"
    default = PasswordHasher()  # the library's default is the same profile
    assert (default.time_cost, default.memory_cost, default.parallelism) == (3, 65536, 4)
    passwords.configure(passwords.pool.threads, Settings(_env_file=None).password_hashing)
    made = asyncio.run(passwords.hash_password("a long enough passphrase"))
    got = extract_parameters(made)
    assert (got.time_cost, got.memory_cost, got.parallelism) == (3, 65536, 4)
    assert got == profiles.RFC_9106_LOW_MEMORY


def test_prod_refuses_the_cheapest_profile_by_name(monkeypatch) -> None:
    monkeypatch.setenv("VIGIL_ENV", "prod")
    settings = Settings(
        database_url="postgresql://vigil:s3cret-enough@db.internal/vigil",
        http_host="0.0.0.0",
        password_hashing="cheapest",
    )
    assert unsafe_settings(settings) == ["VIGIL_PASSWORD_HASHING=cheapest: test-suite cost"]
    with pytest.raises(UnsafeSettings, match="VIGIL_PASSWORD_HASHING"):
        check_environment(settings)
    assert (
        unsafe_settings(settings.model_copy(update={"password_hashing": "rfc9106-low-memory"}))
        == []
    )


def test_an_unknown_profile_is_an_error_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="password_hashing"):
        Settings(_env_file=None, password_hashing="md5")


@pytest.mark.parametrize("profile", sorted(passwords.PROFILES))
def test_each_profile_verifies_rehashes_others_and_refuses_wrong_passwords(
    profile, profile_restored
) -> None:
    other = "cheapest" if profile != "cheapest" else "rfc9106-low-memory"

    async def run() -> None:
        passwords.configure(passwords.pool.threads, other)
        from_other = await passwords.hash_password("correct horse")
        passwords.configure(passwords.pool.threads, profile)
        made = await passwords.hash_password("correct horse")
        assert extract_parameters(made) == passwords.PROFILES[profile]
        assert await passwords.verify_password(made, "correct horse")
        assert not await passwords.verify_password(made, "wrong horse")
        assert not await passwords.verify_password(None, "correct horse")  # unknown email
        assert not passwords.needs_rehash(made)
        assert passwords.needs_rehash(from_other)  # replaced at the next login
        assert await passwords.verify_password(from_other, "correct horse")  # until then

    asyncio.run(run())
