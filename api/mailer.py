"""Outgoing email: a narrow ``Mailer`` protocol, an SMTP implementation, a logging fallback."""

from __future__ import annotations

import logging
import smtplib
from email.message import EmailMessage
from typing import Protocol

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from api.config import ApiConfig

log = logging.getLogger(__name__)


class Mailer(Protocol):
    async def send(self, to: str, subject: str, body: str) -> None: ...


class SmtpMailer:
    """Plain SMTP (stdlib smtplib, in a worker thread so the event loop never blocks)."""

    def __init__(self, host: str, port: int, sender: str, timeout_s: float = 10.0) -> None:
        self.host, self.port, self.sender, self.timeout_s = host, port, sender, timeout_s

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.sender, to, subject
        message.set_content(body)

        def deliver() -> None:
            with smtplib.SMTP(self.host, self.port, timeout=self.timeout_s) as smtp:
                smtp.send_message(message)

        await run_in_threadpool(deliver)


class LoggingMailer:
    """With no SMTP server configured: log that a message would be sent (not its body,
    which may carry a reset token, nor its address: no email addresses in logs)."""

    async def send(self, to: str, subject: str, body: str) -> None:
        log.warning("no SMTP server configured (VIGIL_SMTP_HOST): not sending %r", subject)


def mailer_for(config: ApiConfig) -> Mailer:
    if config.smtp_host:
        return SmtpMailer(config.smtp_host, config.smtp_port, config.smtp_from)
    return LoggingMailer()


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
    except Exception:
        log.exception("sending %r failed", subject)  # not the address: no emails in logs
