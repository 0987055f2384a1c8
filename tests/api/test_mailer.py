"""A mail that cannot be sent is logged without the recipient: an SMTP refusal's text names
the address, so only the kind of failure reaches the log."""

from __future__ import annotations

import asyncio
import logging

import aiosmtplib
import pytest

from api.mailer import send_quietly

ADDRESS = "patient.private@example.com"


class RefusingServer:
    """What aiosmtplib raises when the server refuses the one recipient."""

    async def send(self, to: str, subject: str, body: str) -> None:
        raise aiosmtplib.SMTPRecipientsRefused(
            [aiosmtplib.SMTPRecipientRefused(550, f"<{to}>: no such user", to)]
        )


def test_a_refused_recipient_is_not_named_in_the_log(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="api.mailer"):
        asyncio.run(send_quietly(RefusingServer(), ADDRESS, "Reset your password", "token"))
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "SMTPRecipientsRefused" in caplog.text
    assert "Reset your password" in caplog.text
    assert ADDRESS not in caplog.text
    assert all(r.exc_info is None for r in caplog.records)
