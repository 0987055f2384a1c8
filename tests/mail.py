"""A real local SMTP server (aiosmtpd) that keeps what it receives, for tests."""

from __future__ import annotations

import re
import ssl
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    # How each message arrived: (over TLS, the login that sent it).
    sessions: list[tuple[bool, str | None]] = field(default_factory=list)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = message_from_bytes(envelope.content)
        with self._cond:
            self.messages.append(message)
            self.sessions.append((session.ssl is not None, session.auth_data))
            self._cond.notify_all()
        return "250 Message accepted for delivery"

    def _to(self, address: str) -> list[Message]:
        return [m for m in self.messages if m["To"].lower() == address.lower()]

    def to(self, address: str) -> list[Message]:
        with self._cond:
            return self._to(address)

    def wait_for(self, address: str, count: int = 1, timeout_s: float = 30) -> list[Message]:
        """The messages to ``address`` once there are ``count`` of them (AssertionError if
        they do not arrive within ``timeout_s``)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            while len(found := self._to(address)) < count:
                left = deadline - time.monotonic()
                assert left > 0, f"{len(found)} of {count} messages to {address} arrived"
                self._cond.wait(left)
            return found


def body_of(message: Message) -> str:
    return message.get_payload(decode=True).decode()


def reset_token(message: Message) -> str:
    match = re.search(r"Reset token: (\S+)", body_of(message))
    assert match, body_of(message)
    return match[1]


class SmtpServer:
    """``tls_context``: the server offers STARTTLS (and requires it); ``login``: it requires
    AUTH with this (user, password), over TLS."""

    def __init__(
        self,
        port: int,
        host: str = "127.0.0.1",
        tls_context: ssl.SSLContext | None = None,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.inbox = Inbox()
        extra: dict = {}
        if tls_context is not None:
            extra |= {"tls_context": tls_context, "require_starttls": True}
        if login is not None:
            extra |= {"auth_required": True, "authenticator": _authenticator(*login)}
        self.controller = Controller(self.inbox, hostname=host, port=port, **extra)
        self.host, self.port = host, port

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()


def _authenticator(user: str, password: str):
    def check(server, session, envelope, mechanism, data) -> AuthResult:
        ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
            user.encode(),
            password.encode(),
        )
        return AuthResult(success=ok, auth_data=user if ok else None)

    return check
