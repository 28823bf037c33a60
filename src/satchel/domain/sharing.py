"""Sharing: links to one or several files, with expiry, download limits and passwords."""

from __future__ import annotations

import re
import secrets
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from satchel.domain.accounts import MAX_PASSWORD, normalize_email
from satchel.domain.errors import Gone, InvalidInput, Unauthenticated
from satchel.domain.previews import PreviewsOff

MAX_NOTE = 1000
MAX_TITLE = 200
MAX_RECIPIENTS = 20
MAX_DOWNLOADS = 1_000_000
_TOKEN = re.compile(r"[A-Za-z0-9_-]{32}")  # 24 random bytes in url-safe base64


def new_share_token() -> str:
    return secrets.token_urlsafe(24)  # 192 random bits


def is_share_token(value: str) -> bool:
    """Whether ``value`` could be a link's token at all; anything else is "no such link" without a query."""
    return _TOKEN.fullmatch(value) is not None


def share_lifetime(hours: float | None, *, default_days: int, max_days: int) -> timedelta:
    """How long a new link lasts: the hours asked for, or the server's default when none are.

    Compared before anything is converted, so no number (1e300, infinity, NaN, a thousand digits) can overflow.
    """
    if hours is None:
        return timedelta(days=default_days)
    if not hours > 0:  # NaN included: it is not greater than anything
        raise InvalidInput("The expiry must be a positive number of hours.")
    if hours > max_days * 24:
        raise InvalidInput(f"Links can last at most {max_days} days on this server.")
    return timedelta(hours=hours)


def history_ends(now: datetime, days: int) -> datetime:
    """Ended shares the sweep dealt with at or before this moment have outlived their ``days`` of history: their
    records go, and their links answer "no such link" from then on."""
    return now - timedelta(days=days)


def check_share_password(password: str) -> None:
    """A password a link can be locked with: refused here when the hasher could not take it."""
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("That password is too long.")
    if any(unicodedata.category(c) == "Cs" for c in password):  # lone surrogates cannot be encoded at all
        raise InvalidInput("That password contains characters that cannot be stored.")


def clean_note(note: str | None) -> str | None:
    # Line breaks and tabs are a note's own; other control characters go (NUL cannot be stored in PostgreSQL
    # text), and so do lone surrogates (they cannot be encoded at all).
    kept = "".join(c for c in note or "" if c in "\t\n\r" or unicodedata.category(c) not in ("Cc", "Cs"))
    return kept.strip() or None


# Characters that have no place in a one-line heading or a mail subject: control characters (line breaks and
# tabs included), line and paragraph separators, lone surrogates (they cannot be encoded at all), and the
# bidirectional controls that can make a title read otherwise than it is written.
_BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def breaks_a_title(char: str) -> bool:
    """Whether ``char`` is refused in a share's title (the API's schema derives its pattern from this)."""
    return unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp") or char in _BIDI_CONTROLS


def clean_title(raw: str | None) -> str | None:
    """A share's title from user input: one line of at most ``MAX_TITLE`` characters, or None when blank.

    Refused rather than cleaned, unlike a note: a title is a heading and a mail subject, and a character
    silently dropped from it would change what its owner wrote."""
    if any(breaks_a_title(c) for c in raw or ""):
        raise InvalidInput("A title is one line of text: no line breaks, tabs or other control characters.")
    title = (raw or "").strip()
    if len(title) > MAX_TITLE:
        raise InvalidInput(f"Keep the title to {MAX_TITLE} characters or fewer.")
    return title or None


class ShareExpired(Gone):
    """This link has expired."""


class ShareRevoked(Gone):
    """This link was revoked by its owner."""


class ShareUsedUp(Gone):
    """This link has reached its download limit."""


class SharePasswordRequired(Unauthenticated):
    """This link is protected by a password."""


@dataclass(frozen=True)
class ShareTerms:
    """What the owner asked for when creating a share, checked against the server's limits."""

    expires_in: timedelta
    max_downloads: int | None = None
    note: str | None = None
    delete_files_when_done: bool = False
    notify: tuple[str, ...] = ()
    allow_previews: bool = False
    title: str | None = None

    def validated(self, max_days: int) -> ShareTerms:
        if self.expires_in <= timedelta(0):
            raise InvalidInput("The expiry must be in the future.")
        if self.expires_in > timedelta(days=max_days):
            raise InvalidInput(f"Links can last at most {max_days} days on this server.")
        if self.max_downloads is not None and not 1 <= self.max_downloads <= MAX_DOWNLOADS:
            raise InvalidInput(f"The download limit must be between 1 and {MAX_DOWNLOADS:,}.")
        note = clean_note(self.note)
        if note and len(note) > MAX_NOTE:
            raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.")
        if len(self.notify) > MAX_RECIPIENTS:
            raise InvalidInput(f"Send the link to at most {MAX_RECIPIENTS} people at once.")
        recipients = tuple(dict.fromkeys(normalize_email(r) for r in self.notify))
        return replace(self, note=note, notify=recipients, title=clean_title(self.title))


@dataclass
class Share:
    """The sharing aggregate root: it alone decides whether a download may happen."""

    id: int
    token: str
    owner_id: int
    file_ids: list[str]
    created_at: datetime
    expires_at: datetime
    max_downloads: int | None
    download_count: int
    password_hash: str | None
    note: str | None
    revoked_at: datetime | None = None
    delete_files_when_done: bool = False
    allow_previews: bool = False
    title: str | None = None
    # When the expiry sweep found the share ended and dealt with its files. Its record stays after that, so the
    # link keeps saying why it ended, until the history window (``history_ends``) has passed.
    swept_at: datetime | None = None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    def forgotten_at(self, history_days: int) -> datetime | None:
        """When this ended share's record goes (``history_ends``), or None while the sweep has not dealt with it."""
        return None if self.swept_at is None else self.swept_at + timedelta(days=history_days)

    @property
    def remaining_downloads(self) -> int | None:
        return None if self.max_downloads is None else max(0, self.max_downloads - self.download_count)

    def ended_by(self, now: datetime) -> OpenWhile | None:
        """The first term of ``OPEN_WHILE`` this share no longer meets, or None while it is open."""
        return next((term for term in OPEN_WHILE if not term.holds(self, now)), None)

    def is_open(self, now: datetime) -> bool:
        return self.ended_by(now) is None

    def status(self, now: datetime) -> str:
        ended = self.ended_by(now)
        return "active" if ended is None else ended.status

    def ensure_open(self, now: datetime) -> None:
        """Raise the reason this share can no longer be used, if there is one."""
        ended = self.ended_by(now)
        if ended is not None:
            raise ended.error()

    def authorize_download(self, now: datetime, *, unlocked: bool) -> None:
        """May someone download now? The count itself is taken atomically by the repository."""
        self.ensure_open(now)
        if self.has_password and not unlocked:
            raise SharePasswordRequired()

    @property
    def previews_allowed(self) -> bool:
        """A preview is no download, so a link that limits downloads shows none unless its owner allowed them."""
        return self.max_downloads is None or self.allow_previews

    def authorize_preview(self, now: datetime, *, unlocked: bool) -> None:
        """May someone look at this link's files now? Never counted: it takes nothing from the limit."""
        self.authorize_download(now, unlocked=unlocked)
        if not self.previews_allowed:
            raise PreviewsOff()


@dataclass(frozen=True)
class OpenWhile:
    """One term of the rule "a share is still open": while it holds; once not, the share is ``status``."""

    status: str
    error: type[Gone]
    holds: Callable[[Share, datetime], bool]


# The one definition of an open share, in the order its reasons are told. The database adapter renders each
# term as SQL by its ``status`` (adapters/db/sharing.py); the contract suite proves the two agree.
OPEN_WHILE: tuple[OpenWhile, ...] = (
    OpenWhile("revoked", ShareRevoked, lambda share, now: share.revoked_at is None),
    OpenWhile("expired", ShareExpired, lambda share, now: now < share.expires_at),
    OpenWhile("used up", ShareUsedUp, lambda share, now: share.remaining_downloads != 0),
)
