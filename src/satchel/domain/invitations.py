"""Invitations: an administrator asks someone by email to open an account, through a link that works once.

The link is a one-time link (``domain/one_time_links.py``): only its token's SHA-256 is kept, and the mail job
carries a nonce the token is made from under ``SECRET_KEY``, so reading the database alone gives no one a working
link. A re-sent invitation gets a new nonce, hence a new token and hash: the old link, and any old mail not yet
sent, are dead.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal, get_args

from satchel.domain import one_time_links
from satchel.domain.errors import Conflict, Gone, NotFound
from satchel.domain.one_time_links import new_nonce as new_nonce  # as invitations have always named them
from satchel.domain.one_time_links import token_hash as token_hash

InvitationStatus = Literal["pending", "accepted", "revoked", "expired"]
INVITATION_STATUSES: Final[tuple[InvitationStatus, ...]] = get_args(InvitationStatus)
MAX_DAYS: Final = 365


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


def link_token(key: bytes, nonce: str) -> str:
    """The token in an invitation's link, made from its nonce with the server's secret key."""
    return one_time_links.link_token(key, "invitation", nonce)


def is_invitation_token(value: str) -> bool:
    """Whether ``value`` could be an invitation link's token at all; anything else is "no such invitation"."""
    return one_time_links.is_link_token(value)


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
