"""Sign-in through an OpenID Connect provider: who the provider says someone is, and which account that opens.

An identity is named for good by its issuer and subject, never by its email: the link from an identity to an
account is stored, so a later change of address at the provider still finds the account. An address links an
identity to an existing account only when the provider says it verified that address; otherwise anyone who
can register that address at the provider would take the account over. A new account is opened only as the
sign-up policy allows (``open``; ``invite`` with an invitation to that address waiting; never ``closed``).
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Final

from satchel.domain.accounts import SignupDisabled, SignupPolicy, User
from satchel.domain.errors import Conflict, DomainError, Forbidden

SIGN_IN_LASTS: Final = timedelta(minutes=10)  # from the button to the provider's answer


class UnverifiedEmail(Forbidden):
    """Your identity provider did not say it verified your email address, so it cannot open or join an account
    here. Verify the address with the provider, or sign in with your password."""


class SignInMismatch(DomainError):
    """This sign-in did not start in this browser, or it was already finished: start again from the sign-in page."""

    status = 400


class SignInExpired(DomainError):
    """This sign-in took too long: start again from the sign-in page."""

    status = 400


class ProviderRefused(DomainError):
    """The identity provider did not sign you in: start again from the sign-in page, or sign in with your password."""

    status = 400


class AlreadyLinked(Conflict):
    """This identity was linked to an account by another sign-in just now: start again from the sign-in page."""


class SignInPlan(Enum):
    """What a sign-in through the provider does, once the rules below allowed it."""

    SIGN_IN = "sign in"  # the identity is linked to an account already
    LINK = "link"  # link the identity to the account with its verified address, then sign in
    OPEN = "open"  # open a new account (sign-up is open)
    ACCEPT_INVITATION = "accept invitation"  # open the invited account


@dataclass(frozen=True)
class Identity:
    """What the provider vouched for, its ID token's signature and claims checked."""

    issuer: str
    subject: str
    email: str | None
    email_verified: bool


@dataclass
class LinkedIdentity:
    """An identity linked to an account; ``email`` is the address it had when linked."""

    id: int
    issuer: str
    subject: str
    user_id: int
    email: str
    created_at: datetime
    last_used_at: datetime | None = None


@dataclass(frozen=True)
class PendingSignIn:
    """What the browser's session keeps between the button and the provider's answer."""

    state: str
    nonce: str
    code_verifier: str
    started_at: datetime

    @classmethod
    def start(cls, now: datetime) -> PendingSignIn:
        """A new sign-in: 256 random bits each for the state, the nonce and the PKCE verifier."""
        return cls(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48), now)

    def ensure_answers(self, state: str | None, now: datetime) -> None:
        """The provider's answer belongs to this sign-in (its ``state``, compared in constant time) and came in time."""
        if not state or not hmac.compare_digest(state.encode(), self.state.encode()):
            raise SignInMismatch()
        if now - self.started_at > SIGN_IN_LASTS:
            raise SignInExpired()


def plan_sign_in(
    identity: Identity, *, linked: User | None, same_email: User | None, policy: SignupPolicy, invited: bool
) -> SignInPlan:
    """Which account an identity signs in to, or why none: ``linked`` is the account it is linked to,
    ``same_email`` the account with its address, ``invited`` whether an invitation to that address waits."""
    if linked is not None:
        linked.ensure_active()
        return SignInPlan.SIGN_IN
    if not identity.email or not identity.email_verified:
        raise UnverifiedEmail()
    if same_email is not None:
        same_email.ensure_active()
        return SignInPlan.LINK
    if policy.mode == "open":
        return SignInPlan.OPEN
    if policy.mode == "invite" and invited:
        return SignInPlan.ACCEPT_INVITATION
    if policy.mode == "closed":
        raise SignupDisabled("Sign-up is closed on this server: ask an administrator for an account first.")
    policy.ensure_sign_up()  # says accounts are by invitation
    raise AssertionError("unreachable: every mode is handled above")
