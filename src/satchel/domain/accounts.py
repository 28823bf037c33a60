"""Accounts: users, their quota, and personal API tokens."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from satchel.domain.errors import Conflict, DomainError, Forbidden, InvalidInput, TooLarge

_EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
MIN_PASSWORD = 10
MAX_PASSWORD = 1024
MAX_QUOTA: Final = 2**53 - 1  # 8 PiB, beyond any store: the largest whole number every JSON client holds exactly


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


class SignupByInvitation(Forbidden):
    """Accounts on this server are by invitation: open the link in your invitation, or ask an administrator."""


class InvitationsClosed(Conflict):
    """Sign-up is closed here (SATCHEL_SIGNUP=closed), invitations too: create the account with a password instead."""


class SelfLockout(Conflict):
    """An administrator cannot disable or demote their own account: another administrator must."""


class QuotaBelowUsage(Conflict):
    """The account already uses more than that quota."""


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


def check_quota(quota_bytes: int) -> None:
    if not 0 < quota_bytes <= MAX_QUOTA:
        raise InvalidInput("A quota is a positive number of bytes.")


# Who may open an account, as SATCHEL_SIGNUP says: set by the environment, never by the database (factor III).
SignupMode = Literal["open", "invite", "closed"]


@dataclass(frozen=True)
class SignupPolicy:
    """``open``: anyone signs up. ``invite``: only an invitation link opens an account. ``closed``: neither;
    administrators create accounts. Administrators may create accounts under every policy."""

    mode: SignupMode

    @property
    def sign_up_open(self) -> bool:
        return self.mode == "open"

    @property
    def invitations_open(self) -> bool:
        return self.mode != "closed"

    def ensure_sign_up(self) -> None:
        if self.mode == "invite":
            raise SignupByInvitation()
        if self.mode == "closed":
            raise SignupDisabled()

    def ensure_invitations(self) -> None:
        """Inviting someone needs a policy that takes invitations."""
        if not self.invitations_open:
            raise InvitationsClosed()

    def ensure_invitation_links(self) -> None:
        """An invitation's link opens an account unless sign-up is closed altogether."""
        if not self.invitations_open:
            raise SignupDisabled(
                "Sign-up is closed on this server, invitation links included: ask an administrator for an account."
            )


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
    session_epoch: int = 0  # moved on to end every session at once (an administrator disabling the account)
    last_signed_in_at: datetime | None = None

    @property
    def remaining_bytes(self) -> int:
        return max(0, self.quota_bytes - self.used_bytes)

    @property
    def session_stamp(self) -> str:
        """Changes whenever the password or the session epoch does: a session remembers it at sign-in and ends
        when it no longer matches."""
        # Epoch 0 keeps the stamp sessions were given before epochs existed: nobody is signed out by an upgrade.
        seed = self.password_hash if not self.session_epoch else f"{self.password_hash}#{self.session_epoch}"
        return hashlib.sha256(seed.encode()).hexdigest()[:16]

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

    def ensure_may_restrict(self, target: User) -> None:
        """Disabling or demoting is for someone else's account, so no administrator locks themselves out (and
        the last administrator always remains one)."""
        if target.id == self.id:
            raise SelfLockout()

    def ensure_room_for(self, size: int) -> None:
        if size > self.remaining_bytes:
            raise QuotaExceeded()

    def ensure_quota_holds(self, quota_bytes: int) -> None:
        """A new quota keeps the invariant: it is a quota at all, and what the account uses fits in it."""
        check_quota(quota_bytes)
        if quota_bytes < self.used_bytes:
            raise QuotaBelowUsage(f"{self.email} already uses {self.used_bytes:,} bytes, more than that quota.")


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
