"""Accounts: users, their quota, and personal API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, TooLarge

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024


class InvalidCredentials(DomainError):
    """The email or password is not right."""

    status = 401


class AccountDisabled(Forbidden):
    """This account is disabled."""


class EmailTaken(Conflict):
    """An account with this email already exists."""


class NotAdmin(Forbidden):
    """Only administrators may do that."""


class SignupDisabled(Forbidden):
    """Sign-up is closed on this server; ask an administrator for an account."""


class QuotaExceeded(TooLarge):
    """This upload would exceed your storage quota."""


def _has_control_characters(text: str) -> bool:
    # NUL and lone surrogates cannot be stored in PostgreSQL text at all; no control character belongs in an address.
    return any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def normalize_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not _EMAIL.match(email) or _has_control_characters(email):
        raise InvalidInput("Enter a valid email address.")
    return email


# What a label may not hold: control, format, surrogate and private-use characters, line and paragraph
# separators, and any white space but the plain space - of the Basic Multilingual Plane, where every such
# character typed by a keyboard lies. Beyond it are emoji (their flags spelled with tag characters), rarer
# scripts and symbols: taken as they are.
_UNSHOWN = ("Cc", "Cf", "Cs", "Co", "Zl", "Zp")
MAX_TOKEN_NAME = 100


def shows_as_text(char: str) -> bool:
    if ord(char) > 0xFFFF:
        return True
    category = unicodedata.category(char)
    return category not in _UNSHOWN and (category != "Zs" or char == " ")


def clean_token_name(name: str) -> str:
    """An API token's name: 1 to 100 characters that show as text, once white space around it is trimmed."""
    name = name.strip()
    if not 1 <= len(name) <= MAX_TOKEN_NAME or not all(map(shows_as_text, name)):
        raise InvalidInput(f"Give the token a name of up to {MAX_TOKEN_NAME} characters that show as text.")
    return name


def check_password_strength(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(f"Use a password of at least {MIN_PASSWORD} characters.")
    if len(password) > MAX_PASSWORD:
        raise InvalidInput("That password is too long.")


@dataclass
class User:
    """The accounts aggregate root. Quota is its invariant: used never exceeds quota."""

    id: int
    email: str
    password_hash: str
    is_admin: bool
    disabled: bool
    quota_bytes: int
    used_bytes: int
    created_at: datetime

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.quota_bytes - self.used_bytes)

    @property
    def session_stamp(self) -> str:
        """Changes whenever the password does: a session remembers it at sign-in and ends when it no longer matches."""
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def signed_in_with(self, stamp: str | None) -> bool:
        """Whether a session stamped ``stamp`` was opened with the current password."""
        return bool(stamp) and hmac.compare_digest(str(stamp), self.session_stamp)

    def ensure_active(self) -> None:
        if self.disabled:
            raise AccountDisabled()

    def ensure_admin(self) -> None:
        """Administration is for active accounts with ``is_admin``: every admin use case asks this first."""
        self.ensure_active()
        if not self.is_admin:
            raise NotAdmin()

    def ensure_room_for(self, size: int) -> None:
        if size > self.remaining_bytes:
            raise QuotaExceeded()


@dataclass
class ApiToken:
    """A personal API token. Only its hash is stored; the token itself is shown once."""

    id: int
    user_id: int
    name: str
    prefix: str
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None
