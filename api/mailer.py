"""Outgoing email for the API: the shared SMTP client (:mod:`actors.mailer`, also the alert
notifier's), a logging fallback when no server is configured, and the request dependency."""

from __future__ import annotations

import logging
from typing import Protocol

from fastapi import Request

from actors.mailer import SmtpMailer, SmtpSettings
from api.config import ApiConfig

log = logging.getLogger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class LoggingMailer:
    """With no SMTP server configured: log that a message would be sent (not its body,
    which may carry a reset token, nor its address: no email addresses in logs)."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.warning("no SMTP server configured (VIGIL_SMTP_HOST): not sending %r", subject)


def smtp_settings(config: ApiConfig) -> SmtpSettings | None:
    """The SMTP server the API and the alert notifier send through; None: not configured."""
    if not config.smtp_host:
        return None
    return SmtpSettings(
        host=config.smtp_host,
        port=config.smtp_port,
        sender=config.smtp_from,
        username=config.smtp_username,
        password=config.smtp_password,
        ca_file=config.smtp_ca_file,
        allow_plaintext=config.smtp_allow_plaintext,
    )


def mailer_for(config: ApiConfig) -> Mailer:
    settings = smtp_settings(config)
    return LoggingMailer() if settings is None else SmtpMailer(settings)


def get_mailer(request: Request) -> Mailer:
    """Dependency: the app's mailer, made on first use from its config."""
    state = request.app.state
    if getattr(state, "mailer", None) is None:
        state.mailer = mailer_for(state.config)
    return state.mailer


async def send_quietly(mailer: Mailer, to: str, subject: str, body: str) -> None:
    """Send, logging failures: run after the response, so a mail problem never shows in it
    (and never tells a caller whether an account exists)."""
    try:
        await mailer.send(to, subject, body)
    except Exception as exc:
        # The kind of failure only: an SMTP error's text (and so a traceback) can hold the
        # recipient's address (a refused recipient), and no email address goes in a log.
        log.warning("sending %r failed: %s", subject, type(exc).__name__)
