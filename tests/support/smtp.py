"""A real SMTP server on loopback (aiosmtpd) that keeps every message it is handed, parsed."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller

from satchel.runtime.embedded import free_port

SENDER = "noreply@satchel.example.test"


@dataclass
class Received:
    """One delivered message: its envelope and the parsed message."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage

    @property
    def text(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None, "no text/plain part"
        return str(part.get_content())  # type: ignore[attr-defined]

    @property
    def html(self) -> str:
        part = self.message.get_body(("html",))
        assert part is not None, "no text/html part"
        return str(part.get_content())  # type: ignore[attr-defined]


@dataclass
class Mailbox:
    """What the server received, in order; safe to read from the test thread."""

    url: str
    rcpt_delay: float = 0.0  # seconds each RCPT waits for its answer: a slow server, mid-conversation
    _received: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _rcpts: int = 0

    async def handle_RCPT(self, server: Any, session: Any, envelope: Any, address: str, options: Any) -> str:
        with self._lock:
            self._rcpts += 1
        await asyncio.sleep(self.rcpt_delay)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self._received.append(Received(envelope.mail_from, list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"

    @property
    def messages(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def to(self, address: str) -> list[Received]:
        return [m for m in self.messages if address in m.rcpt_tos]

    @property
    def recipients_asked(self) -> int:
        """How many RCPT commands arrived, whether or not their message was ever sent."""
        with self._lock:
            return self._rcpts


@contextmanager
def smtp_server(*, rcpt_delay: float = 0.0) -> Iterator[Mailbox]:
    """An SMTP server for the duration of the block; ``mailbox.url`` is an EMAIL_URL for it."""
    port = free_port()
    mailbox = Mailbox(url=f"smtp://127.0.0.1:{port}?from={SENDER}", rcpt_delay=rcpt_delay)
    controller = Controller(mailbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
