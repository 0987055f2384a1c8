"""The one SMTP client (actors.mailer) against real local aiosmtpd servers: STARTTLS with a
certificate made here, login, and no clear text to a server that is not on loopback."""

from __future__ import annotations

import ssl

import pytest

from actors.mailer import PlaintextRefused, SmtpMailer, SmtpSettings, is_loopback
from tests.actors.conftest import LOGIN
from tests.mail import SmtpServer, body_of


async def test_starttls_and_login_to_a_remote_server(remote_tls) -> None:
    server, cert = remote_tls
    user, password = LOGIN
    settings = SmtpSettings(
        server.host, server.port, username=user, password=password, ca_file=str(cert)
    )
    await SmtpMailer(settings).send("ann@example.com", "Reset", "Reset token: abc")
    (message,) = server.inbox.wait_for("ann@example.com")
    assert body_of(message).strip() == "Reset token: abc"
    assert server.inbox.sessions == [(True, user)]  # over TLS, logged in


async def test_a_certificate_that_does_not_verify_gets_nothing(remote_tls) -> None:
    server, _ = remote_tls
    user, password = LOGIN
    settings = SmtpSettings(server.host, server.port, username=user, password=password)
    with pytest.raises(ssl.SSLCertVerificationError):
        await SmtpMailer(settings).send("ann@example.com", "Reset", "Reset token: abc")
    assert server.inbox.messages == []


async def test_a_remote_server_without_starttls_gets_nothing_unless_allowed(
    remote_plain,
) -> None:
    settings = SmtpSettings(remote_plain.host, remote_plain.port)
    with pytest.raises(PlaintextRefused):
        await SmtpMailer(settings).send("ann@example.com", "Reset", "Reset token: abc")
    assert remote_plain.inbox.messages == []
    allowed = SmtpSettings(remote_plain.host, remote_plain.port, allow_plaintext=True)
    await SmtpMailer(allowed).send("ann@example.com", "Reset", "Reset token: abc")
    assert remote_plain.inbox.wait_for("ann@example.com")
    assert remote_plain.inbox.sessions == [(False, None)]


async def test_a_loopback_server_may_be_plain(smtp: SmtpServer) -> None:
    settings = SmtpSettings(smtp.host, smtp.port, sender="Vigil <v@example.com>")
    await SmtpMailer(settings).send("bob@example.com", "Hello", "text")
    (message,) = smtp.inbox.wait_for("bob@example.com")
    assert (message["From"], message["Subject"]) == ("Vigil <v@example.com>", "Hello")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("[::1]", True),
        ("localhost", True),
        ("LOCALHOST.", True),
        ("192.0.2.2", False),
        ("smtp.example.com", False),
        ("localhost.example.com", False),
    ],
)
def test_what_counts_as_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback
    assert SmtpSettings(host).tls_required is not loopback
    assert SmtpSettings(host, allow_plaintext=True).tls_required is False
