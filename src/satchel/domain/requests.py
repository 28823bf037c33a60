"""Upload requests: a link through which anyone may upload files into its owner's account.

The reverse of a share. The owner sets how long it lasts, how many files and how many bytes it takes in
all, and maybe a password; the owner's quota pays for what arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from satchel.domain.errors import Forbidden, Gone, InvalidInput, TooLarge, Unauthenticated
from satchel.domain.sharing import clean_note

MAX_NOTE = 1000
MAX_FILES = 1000
MAX_BYTES = 2**53 - 1  # 8 PiB: the largest integer every JSON parser reads exactly (RFC 7493)


class RequestExpired(Gone):
    """This upload link has expired."""


class RequestRevoked(Gone):
    """This upload link was closed by its owner."""


class RequestFull(Gone):
    """This upload link has received all it asked for."""


class RequestTooLarge(TooLarge):
    """This file is larger than what this upload link still accepts."""


class RequestPasswordRequired(Unauthenticated):
    """This upload link is protected by a password."""


class UploadNotFromPage(Forbidden):
    """A browser that unlocked this link uploads from the link's page only: send the page's CSRF token."""


@dataclass(frozen=True)
class RequestTerms:
    """What the owner asks for: checked against the server's limits before a request exists."""

    expires_in: timedelta
    max_files: int | None = None
    max_bytes: int | None = None
    note: str | None = None

    def validated(self, *, max_days: int) -> RequestTerms:
        if self.expires_in <= timedelta(0):
            raise InvalidInput("The expiry must be in the future.")
        if self.expires_in > timedelta(days=max_days):
            raise InvalidInput(f"Upload links can last at most {max_days} days on this server.")
        if self.max_files is not None and not 1 <= self.max_files <= MAX_FILES:
            raise InvalidInput(f"The number of files must be between 1 and {MAX_FILES:,}.")
        if self.max_bytes is not None and not 1 <= self.max_bytes <= MAX_BYTES:
            raise InvalidInput("The size limit must be a positive number of bytes.")
        note = clean_note(self.note)
        if note and len(note) > MAX_NOTE:
            raise InvalidInput(f"Keep the note under {MAX_NOTE} characters.")
        return RequestTerms(self.expires_in, self.max_files, self.max_bytes, note)


@dataclass
class UploadRequest:
    """The upload-request aggregate root: it alone decides whether one more file may come in."""

    id: int
    token: str
    owner_id: int
    created_at: datetime
    expires_at: datetime
    max_files: int | None
    max_bytes: int | None
    received_files: int
    received_bytes: int
    password_hash: str | None
    note: str | None
    revoked_at: datetime | None = None

    @property
    def has_password(self) -> bool:
        return self.password_hash is not None

    @property
    def remaining_files(self) -> int | None:
        return None if self.max_files is None else max(0, self.max_files - self.received_files)

    @property
    def remaining_bytes(self) -> int | None:
        return None if self.max_bytes is None else max(0, self.max_bytes - self.received_bytes)

    def ended_by(self, now: datetime) -> RequestOpenWhile | None:
        """The first term of ``REQUEST_OPEN_WHILE`` this request no longer meets, or None while it is open."""
        return next((term for term in REQUEST_OPEN_WHILE if not term.holds(self, now)), None)

    def status(self, now: datetime) -> str:
        ended = self.ended_by(now)
        return "open" if ended is None else ended.status

    def ensure_open(self, now: datetime) -> None:
        if (ended := self.ended_by(now)) is not None:
            raise ended.error()

    def authorize_upload(self, now: datetime, *, unlocked: bool, size: int | None = None) -> None:
        """May one more file (of ``size`` bytes, when it is known) come in now? Taken atomically on record."""
        self.ensure_open(now)
        if self.has_password and not unlocked:
            raise RequestPasswordRequired()
        if size is not None and self.remaining_bytes is not None and size > self.remaining_bytes:
            raise RequestTooLarge()

    def can_take(self, now: datetime, size: int) -> bool:
        """Whether a file of ``size`` bytes could still come in: open, with room for it (``take`` decides for good)."""
        return self.ended_by(now) is None and (self.remaining_bytes is None or size <= self.remaining_bytes)

    def refusal(self, now: datetime, size: int) -> Exception:
        """Why a file of ``size`` bytes could not be taken (the atomic take said no): the first reason that holds."""
        ended = self.ended_by(now)
        if ended is not None:
            return ended.error()
        return RequestTooLarge() if self.remaining_bytes is not None and size > self.remaining_bytes else RequestFull()


@dataclass(frozen=True)
class RequestOpenWhile:
    """One term of "an upload request is still open": while it holds; once not, the request is ``status``."""

    status: str
    error: type[Gone]
    holds: Callable[[UploadRequest, datetime], bool]


# The one definition of an open request; adapters/db/requests.py renders each term as SQL by its status.
REQUEST_OPEN_WHILE: tuple[RequestOpenWhile, ...] = (
    RequestOpenWhile("revoked", RequestRevoked, lambda request, now: request.revoked_at is None),
    RequestOpenWhile("expired", RequestExpired, lambda request, now: now < request.expires_at),
    RequestOpenWhile(
        "full", RequestFull, lambda request, now: request.remaining_files != 0 and request.remaining_bytes != 0
    ),
)
