"""What ``VIGIL_ENV=prod`` refuses at start-up.

A production deployment that silently runs on the embedded database, a default password or
a loopback-only listener loses data or is unreachable in ways nobody notices until patients
do; each such setting is named in one error instead.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from api.config import PRODUCTION_PASSWORD_HASHING
from cluster.settings import Settings

LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
# Passwords of examples, docs and the embedded server; never acceptable in production.
DEFAULT_PASSWORDS = frozenset({"", "vigil", "postgres", "password", "changeme", "secret"})


class UnsafeSettings(ValueError):
    """Settings the environment refuses; the message names each."""


def unsafe_settings(settings: Settings, *, demo: bool = False) -> list[str]:
    """Each setting prod refuses, with why; empty outside prod."""
    if settings.env != "prod":
        return []
    problems = []
    if demo:
        problems.append("--demo: the demo account and simulated sensors are not for production")
    if not settings.database_url:
        problems.append("VIGIL_DATABASE_URL unset: the embedded single-machine database")
    else:
        url = urlsplit(settings.database_url)
        if (url.password or "") in DEFAULT_PASSWORDS:
            problems.append("VIGIL_DATABASE_URL: empty or default database password")
        if url.hostname in LOOPBACK_HOSTS:
            problems.append("VIGIL_DATABASE_URL: a loopback host, unreachable from other nodes")
    if settings.bind_host in LOOPBACK_HOSTS:
        problems.append(f"VIGIL_HTTP_HOST={settings.bind_host}: loopback only")
    if settings.password_hashing != PRODUCTION_PASSWORD_HASHING:
        problems.append(f"VIGIL_PASSWORD_HASHING={settings.password_hashing}: test-suite cost")
    if getattr(settings, "webhook_allow_private", False):
        problems.append("VIGIL_WEBHOOK_ALLOW_PRIVATE: webhooks to private addresses")
    return problems


def check_environment(settings: Settings, *, demo: bool = False) -> None:
    problems = unsafe_settings(settings, demo=demo)
    if problems:
        raise UnsafeSettings(f"VIGIL_ENV={settings.env} refuses to start: " + "; ".join(problems))
