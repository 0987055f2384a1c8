"""A real local SMTP server (aiosmtpd) that keeps what it receives, for tests."""

from __future__ import annotations

import re
import threading
import time
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message

from aiosmtpd.controller import Controller


@dataclass
class Inbox:
    messages: list[Message] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler hook
        message = message_from_bytes(envelope.content)
        with self._cond:
            self.messages.append(message)
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
    def __init__(self, port: int) -> None:
        self.inbox = Inbox()
        self.controller = Controller(self.inbox, hostname="127.0.0.1", port=port)
        self.host, self.port = "127.0.0.1", port

    def start(self) -> None:
        self.controller.start()

    def stop(self) -> None:
        self.controller.stop()
