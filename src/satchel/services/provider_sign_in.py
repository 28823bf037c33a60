"""Sign-in through an OpenID Connect provider: the button, the provider's answer, and the account it opens.

``begin`` makes a new state, nonce and PKCE verifier, for the caller to keep in the browser's server-side
session, and the provider's URL to send the browser to. ``finish`` takes the provider's answer: it must carry
that state, in time; the code is exchanged and the ID token checked by the provider's adapter; then
``domain.identities.plan_sign_in`` decides which account the identity signs in to, and the link, any new
account and their audit events are written in one transaction.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from satchel.domain.accounts import SignupByInvitation, SignupPolicy, User, normalize_email
from satchel.domain.audit import IDENTITY_LINKED, INVITATION_ACCEPTED, SIGNED_IN, SIGNED_UP, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.errors import InvalidInput
from satchel.domain.identities import Identity, PendingSignIn, ProviderRefused, SignInMismatch, SignInPlan, plan_sign_in
from satchel.ports.identity import IdentityProvider
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.security import PasswordHasher

METHOD = "oidc"  # how the audit trail says an account was reached


class ProviderSignIn:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        provider: IdentityProvider,
        *,
        signup: SignupPolicy,
        default_quota: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._provider = provider
        self._signup = signup
        self._default_quota = default_quota
        self._clock = clock

    @property
    def provider_name(self) -> str:
        return self._provider.name

    async def begin(self, redirect_uri: str) -> tuple[str, PendingSignIn]:
        """A new sign-in: the provider's URL to send the browser to, and what to keep until it comes back."""
        pending = PendingSignIn.start(self._clock())
        return await self._provider.authorization_url(pending, redirect_uri), pending

    async def finish(
        self,
        pending: PendingSignIn | None,
        *,
        state: str | None,
        code: str | None,
        error: str | None,
        redirect_uri: str,
        client: str,
    ) -> User:
        """The account the provider's answer signs in to, opened or linked as the rules say; recorded as
        ``account.signed_in`` with ``method: oidc``."""
        if pending is None:
            raise SignInMismatch()
        pending.ensure_answers(state, self._clock())
        if error or not code:  # the person cancelled, or the provider would not sign them in
            raise ProviderRefused()
        identity = await self._provider.identity(code, pending, redirect_uri)
        return await self._account_for(identity, client)

    async def _account_for(self, identity: Identity, client: str) -> User:
        email = _usable(identity.email)
        identity = Identity(identity.issuer, identity.subject, email, identity.email_verified and email is not None)
        now = self._clock()
        async with self._uow() as uow:
            linked = await uow.identities.user_of(identity.issuer, identity.subject)
            same_email = await uow.users.by_email(email) if email and linked is None else None
            invited = bool(email) and self._signup.mode == "invite" and linked is None and same_email is None
            invited = invited and await uow.invitations.pending_for(email or "", now) is not None
            plan = plan_sign_in(identity, linked=linked, same_email=same_email, policy=self._signup, invited=invited)
            user = linked or same_email or await self._open(uow, identity, plan, client)
            if plan is not SignInPlan.SIGN_IN:
                await uow.identities.add(
                    issuer=identity.issuer, subject=identity.subject, user_id=user.id, email=user.email, now=now
                )
                await uow.audit.record(
                    AuditEvent.of(
                        IDENTITY_LINKED,
                        now,
                        actor=user,
                        subject=f"user:{user.id}",
                        client=client,
                        method=METHOD,
                        issuer=identity.issuer,
                    )
                )
            await uow.identities.used(identity.issuer, identity.subject, now)
            await uow.users.signed_in(user.id, now)
            await uow.audit.record(
                AuditEvent.of(SIGNED_IN, now, actor=user, subject=f"user:{user.id}", client=client, method=METHOD)
            )
            await uow.commit()
        return user

    async def _open(self, uow: UnitOfWork, identity: Identity, plan: SignInPlan, client: str) -> User:
        """A new account for the identity's verified address, as the plan says: by open sign-up, or by the
        invitation waiting for that address (used up atomically, as its link would be)."""
        assert identity.email is not None, "plan_sign_in opens accounts only for a verified address"
        now = self._clock()
        is_admin, action, details = False, SIGNED_UP, {}
        if plan is SignInPlan.ACCEPT_INVITATION:
            invitation = await uow.invitations.accept_for(identity.email, now)
            if invitation is None:  # used, withdrawn or expired since it was looked at
                raise SignupByInvitation()
            is_admin, action = invitation.is_admin, INVITATION_ACCEPTED
            details = {"invitation_id": invitation.id, "is_admin": is_admin, "invited_by": invitation.invited_by_email}
        # No password yet: one nobody knows, until its owner sets one through "Forgot your password?".
        unusable = await self._passwords.hash(secrets.token_urlsafe(32))
        user = await uow.users.add(
            email=identity.email, password_hash=unusable, is_admin=is_admin, quota_bytes=self._default_quota
        )
        event = AuditEvent.of(action, now, actor=user, subject=f"user:{user.id}", client=client, method=METHOD)
        event.details.update(details)
        await uow.audit.record(event)
        return user


def _usable(email: str | None) -> str | None:
    """The provider's address as Satchel keeps addresses, or None when it is not one Satchel can use."""
    try:
        return normalize_email(email) if email else None
    except InvalidInput:
        return None
