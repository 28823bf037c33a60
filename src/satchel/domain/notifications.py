"""Notifications: what Satchel tells whom, by mail. Plain text and HTML, from plain Python."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape


@dataclass(frozen=True)
class Notice:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str


def _html(paragraphs: list[str], link: str | None = None, label: str = "") -> str:
    body = "".join(f"<p>{escape(p)}</p>" for p in paragraphs)
    if link:
        body += f'<p><a href="{escape(link, quote=True)}">{escape(label)}</a></p>'
    return f'<!doctype html><html><body style="font-family:sans-serif">{body}</body></html>'


def share_invitation(
    recipient: str, sender: str, url: str, file_names: list[str], note: str | None, title: str | None = None
) -> Notice:
    files = ", ".join(file_names[:5]) + (f" and {len(file_names) - 5} more" if len(file_names) > 5 else "")
    what = f"“{title}”" if title else "files"
    lines = [f"{sender} shared {what} with you: {files}." if title else f"{sender} shared {files} with you."]
    if note:
        lines.append(f"Their note: {note}")
    text = "\n\n".join([*lines, f"Download: {url}"]) + "\n"
    return Notice((recipient,), f"{sender} shared {what} with you", text, _html(lines, url, "Open the shared files"))


def first_download(owner: str, url: str, file_names: list[str]) -> Notice:
    lines = [f"Your link to {', '.join(file_names[:5])} was downloaded for the first time."]
    text = "\n\n".join([*lines, f"Link: {url}"]) + "\n"
    return Notice((owner,), "Your shared files were downloaded", text, _html(lines, url, "See the link"))


def quarantined(owner: str, file_name: str, signature: str) -> Notice:
    lines = [
        f"The file {file_name} you uploaded contains malware ({signature}).",
        "It is quarantined: nobody can download it, through any link. Delete it from your files.",
    ]
    return Notice((owner,), f"Malware found in {file_name}", "\n\n".join(lines) + "\n", _html(lines))


def request_received(owner: str, url: str, file_name: str, size: str, note: str | None) -> Notice:
    lines = [f"Someone uploaded {file_name} ({size}) through your upload link."]
    if note:
        lines.append(f"The link asks: {note}")
    text = "\n\n".join([*lines, f"See what came in: {url}"]) + "\n"
    return Notice((owner,), f"New file through your upload link: {file_name}", text, _html(lines, url, "See it"))


def invitation(recipient: str, inviter: str | None, url: str, expires_at: datetime, *, as_admin: bool) -> Notice:
    who = inviter or "An administrator"
    lines = [f"{who} invited you to open an account on Satchel, to share files by link."]
    if as_admin:
        lines.append("Your account will be an administrator's.")
    until = expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines.append(f"Choose a password to open it. The link works once, until {until}.")
    text = "\n\n".join([*lines, f"Open your account: {url}"]) + "\n"
    return Notice((recipient,), "You are invited to Satchel", text, _html(lines, url, "Open your account"))


def password_reset(recipient: str, url: str, expires_at: datetime) -> Notice:
    until = expires_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "Someone, probably you, asked to reset the password of your Satchel account.",
        f"Choose a new one through this link. It works once, until {until}.",
        "If you did not ask, ignore this mail: your password stays as it is.",
    ]
    text = "\n\n".join([*lines, f"Choose a new password: {url}"]) + "\n"
    return Notice((recipient,), "Reset your Satchel password", text, _html(lines, url, "Choose a new password"))
