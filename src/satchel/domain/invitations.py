"""Invitations: an administrator asks someone by email to open an account, through a link that works once.

The link's token is never stored: the invitation keeps its SHA-256, as API tokens are kept. Nor does the mail
job that carries the link to the worker hold it: the job holds a random nonce, and the token is that nonce's
HMAC under ``SECRET_KEY`` (``link_token``), so reading the database alone gives no one a working link.
A re-sent invitation gets a new nonce, hence a new token and hash: the old link, and any old mail not yet
sent, are dead.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

from satchel.domain.errors import Conflict, Gone, NotFound

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
INVITATION_STATUSES: Final[tuple[InvitationStatus, ...]] = get_args(InvitationStatus)
MAX_DAYS: Final = 365
_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")  # 32 bytes of HMAC-SHA256 in url-safe base64, unpadded


class NoSuchInvitation(NotFound):
    """This invitation link is not valid. It may have been replaced by a newer one: look for the latest mail."""


class InvitationUsed(Gone):
    """This invitation was already used to open an account: sign in instead."""


class InvitationExpired(Gone):
    """This invitation has expired: ask an administrator to send it again."""


class InvitationRevoked(Gone):
    """This invitation was withdrawn: ask an administrator if you still need an account."""


class InvitationPending(Conflict):
    """That address already has an invitation waiting: re-send it instead."""


class AlreadyHasAccount(Conflict):
    """That address already has an account."""


class InvitationClosed(Conflict):
    """That invitation was already accepted or withdrawn."""


def new_nonce() -> str:
    return secrets.token_urlsafe(32)  # 256 random bits: what the link's token is made from


def link_token(key: bytes, nonce: str) -> str:
    """The token in an invitation's link, made from its nonce with the server's secret key."""
    digest = hmac.new(key, b"invitation:" + nonce.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    """What the invitation keeps of its token: a fast hash is enough for 256 unguessable bits. An invitation is
    found by this hash, never by comparing tokens, so how long a lookup takes says nothing about any token."""
    return hashlib.sha256(token.encode()).hexdigest()


def is_invitation_token(value: str) -> bool:
    """Whether ``value`` could be a link's token at all; anything else is "no such invitation", unqueried."""
    return _TOKEN.fullmatch(value) is not None


def invitation_path(token: str) -> str:
    return f"/invite/{token}"


@dataclass
class Invitation:
    """An invitation to open an account at ``email``; ``invited_by_email`` is the administrator's address at
    the time, or None when an operator invited from the command line."""

    id: int
    email: str
    is_admin: bool
    invited_by_email: str | None
    created_at: datetime
    expires_at: datetime
    accepted_at: datetime | None = None
    revoked_at: datetime | None = None

    def status(self, now: datetime) -> InvitationStatus:
        """Accepted and revoked are for good; an expired invitation may still be sent again."""
        if self.accepted_at is not None:
            return "accepted"
        if self.revoked_at is not None:
            return "revoked"
        return "expired" if now >= self.expires_at else "pending"

    def is_open(self, now: datetime) -> bool:
        return self.status(now) == "pending"

    def ensure_open(self, now: datetime) -> None:
        """Its link opens an account only while pending; each other state says why not."""
        status = self.status(now)
        if status == "accepted":
            raise InvitationUsed()
        if status == "revoked":
            raise InvitationRevoked()
        if status == "expired":
            raise InvitationExpired()

    def ensure_resendable(self) -> None:
        """A pending or expired invitation can go out again with a new link; an ended one cannot."""
        if self.accepted_at is not None or self.revoked_at is not None:
            raise InvitationClosed()
