"""Password resets: a one-time link by email that lets the owner of an account choose a new password.

Asking for one answers the same whatever the address: the request only queues a mail job carrying the address
and a nonce, and the worker decides whether there is an account to mail (none, or a disabled one, gets nothing).
The link is a one-time link (``domain/one_time_links.py``): the reset keeps only its token's SHA-256, and is
used up in one conditional statement; using one ends every other reset of the account too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Final, Literal

from satchel.domain.errors import Gone, NotFound

ResetStatus = Literal["pending", "used", "expired"]
DEFAULT_MINUTES: Final = 60
MAX_MINUTES: Final = 24 * 60
# Asking for a link: per address, so nobody's mailbox is flooded; per client, so nobody mails the world.
PER_ADDRESS: Final = (3, 15 * 60)
PER_CLIENT: Final = (10, 60 * 60)
ASKED = "If an account exists for that address, we sent it a link to choose a new password."  # for any address


class NoSuchReset(NotFound):
    """This password reset link is not valid: ask for a new one."""


class ResetUsed(Gone):
    """This password reset link was already used, or a newer one was: ask for a new one if you need it."""


class ResetExpired(Gone):
    """This password reset link has expired: ask for a new one."""


def reset_path(token: str) -> str:
    return f"/password-reset/{token}"


@dataclass
class PasswordReset:
    """A link sent to the owner of ``user_id`` at ``created_at``, good until ``expires_at`` unless used (it, or
    any other reset of the account: ``used_at`` is then set on all of them)."""

    id: int
    user_id: int
    created_at: datetime
    expires_at: datetime
    used_at: datetime | None = None

    def status(self, now: datetime) -> ResetStatus:
        if self.used_at is not None:
            return "used"
        return "expired" if now >= self.expires_at else "pending"

    def is_open(self, now: datetime) -> bool:
        return self.status(now) == "pending"

    def ensure_open(self, now: datetime) -> None:
        """The link sets a password only while pending; each other state says why not."""
        status = self.status(now)
        if status == "used":
            raise ResetUsed()
        if status == "expired":
            raise ResetExpired()
