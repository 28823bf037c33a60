"""Outgoing mail: a real SMTP conversation on loopback, or the log in development."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from satchel.adapters.mail import ConsoleMailer, SmtpMailer, open_mailer
from satchel.ports.mail import Message
from satchel.runtime.embedded import free_port
from satchel.runtime.logging import configure_logging

SENDER = "noreply@example.test"


class Collector:
    """An aiosmtpd handler that keeps every envelope it is handed."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[str, Collector]]:
    collector = Collector()
    port = free_port()
    controller = Controller(collector, hostname="127.0.0.1", port=port)
    controller.start()
    yield f"smtp://127.0.0.1:{port}?from={SENDER}", collector
    controller.stop()


def test_smtp_mailer_delivers_text_and_html(smtp_server: tuple[str, Collector]) -> None:
    url, collector = smtp_server
    mailer = SmtpMailer(url, timeout=5)
    mailer.send(
        Message(
            to=("ann@example.test",),
            subject="Your share link",
            text="Plain body",
            html="<p>HTML body</p>",
            headers={"X-Satchel-Kind": "share"},
        )
    )

    [envelope] = collector.envelopes
    assert envelope.mail_from == SENDER
    assert envelope.rcpt_tos == ["ann@example.test"]
    email = message_from_bytes(envelope.original_content, policy=policy.default)
    assert isinstance(email, EmailMessage)
    assert email["Subject"] == "Your share link"
    assert email["From"] == SENDER
    assert email["To"] == "ann@example.test"
    assert email["X-Satchel-Kind"] == "share"
    plain = email.get_body(("plain",))
    html = email.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Plain body"
    assert html is not None and html.get_content().strip() == "<p>HTML body</p>"


def test_smtp_mailer_sends_to_every_recipient(smtp_server: tuple[str, Collector]) -> None:
    url, collector = smtp_server
    SmtpMailer(url, timeout=5).send(Message(to=("a@example.test", "b@example.test"), subject="Hi", text="x"))
    [envelope] = collector.envelopes
    assert envelope.rcpt_tos == ["a@example.test", "b@example.test"]


@pytest.mark.usefixtures("restore_logging")
def test_console_mailer_logs_the_message(capfd: pytest.CaptureFixture[str]) -> None:
    configure_logging(process="web", release="r1")
    capfd.readouterr()
    ConsoleMailer().send(Message(to=("ann@example.test",), subject="Welcome", text="Hello Ann"))
    events = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.strip()]
    [event] = [e for e in events if e["event"] == "mail.console"]
    assert event["to"] == ["ann@example.test"]
    assert event["subject"] == "Welcome"
    assert event["text"] == "Hello Ann"


def test_open_mailer_picks_the_adapter_by_scheme() -> None:
    assert isinstance(open_mailer("console://"), ConsoleMailer)
    smtp = open_mailer("smtp://mail.example.test:2525?from=me@example.test")
    assert isinstance(smtp, SmtpMailer)
    assert smtp.sender == "me@example.test"
    assert isinstance(open_mailer("smtps://user:pw@mail.example.test"), SmtpMailer)
