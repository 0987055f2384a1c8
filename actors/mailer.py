"""Outgoing email: one SMTP client for the API (password resets, sign-up notices) and the
alert notifier (alert texts), on ``aiosmtplib`` (asyncio, STARTTLS, AUTH LOGIN/PLAIN).

Reset tokens and alert texts are private, so they travel to a remote SMTP server only over
TLS: STARTTLS is required, and a server that does not offer it (or whose certificate does not
verify) gets nothing. Plain text is allowed only to a server on loopback (a local relay such
as the tests' server) or when ``VIGIL_SMTP_ALLOW_PLAINTEXT`` says so explicitly; even then
STARTTLS is used when the server offers it.
"""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage

import aiosmtplib

LOOPBACK_NAMES = ("localhost", "localhost.localdomain")


class PlaintextRefused(aiosmtplib.SMTPException):
    """The server offers no STARTTLS, and it is neither on loopback nor explicitly allowed."""


@dataclass(frozen=True, slots=True)
class SmtpSettings:
    host: str
    port: int = 25
    sender: str = "Vigil <no-reply@localhost>"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    ca_file: str | None = None  # trust this CA too (a private relay's certificate)
    allow_plaintext: bool = False  # send without TLS to a remote server (never in production)
    timeout_s: float = 10.0

    @property
    def tls_required(self) -> bool:
        return not (self.allow_plaintext or is_loopback(self.host))


def is_loopback(host: str) -> bool:
    name = host.strip().removeprefix("[").removesuffix("]").rstrip(".").lower()
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class SmtpMailer:
    """Sends one message per connection (email here is rare: resets, notices, alerts)."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings

    def _client(self) -> aiosmtplib.SMTP:
        s = self.settings
        context = ssl.create_default_context(cafile=s.ca_file)
        return aiosmtplib.SMTP(
            hostname=s.host,
            port=s.port,
            timeout=s.timeout_s,
            start_tls=False,  # decided in send(), once the server's extensions are known
            tls_context=context,
        )

    async def send(self, to: str, subject: str, body: str) -> None:
        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = self.settings.sender, to, subject
        message.set_content(body)
        smtp = self._client()
        async with smtp:
            await smtp.ehlo()
            if smtp.supports_extension("starttls"):
                await smtp.starttls()
            elif self.settings.tls_required:
                raise PlaintextRefused(
                    f"SMTP server {self.settings.host} offers no STARTTLS: not sending in clear"
                    " text (VIGIL_SMTP_ALLOW_PLAINTEXT allows it)"
                )
            if self.settings.username:
                await smtp.login(self.settings.username, self.settings.password or "")
            await smtp.send_message(message)
