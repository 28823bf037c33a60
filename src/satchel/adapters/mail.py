"""Outgoing mail (factor IV): ``smtp://user:pass@host:port``, ``smtps://…`` or ``console://``."""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import parse_qs, unquote, urlsplit

from satchel.ports.mail import Mailer, Message
from satchel.runtime.logging import get_logger, mask_secrets

log = get_logger(__name__)


def _email(message: Message, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(message.to)
    email["Subject"] = message.subject
    for name, value in message.headers.items():
        email[name] = value
    email.set_content(message.text)
    if message.html is not None:
        email.add_alternative(message.html, subtype="html")
    return email


class SmtpMailer:
    """Sends through an SMTP server; STARTTLS when offered, TLS from the start for smtps://."""

    def __init__(self, url: str, *, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._tls else 25)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        query = parse_qs(parts.query)
        self.sender = query.get("from", [f"satchel@{self._host}"])[0]
        self._timeout = timeout

    def send(self, message: Message) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self._tls:
            smtp = smtplib.SMTP_SSL(self._host, self._port, timeout=self._timeout, context=context)
        else:
            smtp = smtplib.SMTP(self._host, self._port, timeout=self._timeout)
        with smtp:
            smtp.ehlo()
            if not self._tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self._user and self._password:
                smtp.login(self._user, self._password)
            smtp.send_message(_email(message, self.sender))
        log.info("mail.sent", recipients=len(message.to), subject=message.subject)


class ConsoleMailer:
    """Writes each message to the log instead of sending it: for development.

    The log is no mailbox: a share link's token is its key, so the text is written with
    links masked (``/s/{token}``); open the link from its share page instead.
    """

    sender = "satchel@localhost"

    def send(self, message: Message) -> None:
        log.info("mail.console", to=list(message.to), subject=message.subject, text=mask_secrets(message.text))


def open_mailer(email_url: str) -> Mailer:
    if urlsplit(email_url).scheme == "console":
        return ConsoleMailer()
    return SmtpMailer(email_url)
