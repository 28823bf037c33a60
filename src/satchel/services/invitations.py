"""Invitations: an address asked by email to open an account, through a link that works once.

Inviting writes the invitation, its mail job and its audit event in one transaction; the mail goes out through
the outbox (``Background.mail``). Accepting uses the invitation up in one conditional statement, in the
transaction that opens the account, so two people racing with one link open one account. Who may invite is
the caller's to check (``Administration`` asks ``ensure_admin``; an operator at the command line is trusted).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from satchel.domain.accounts import EmailTaken, SignupPolicy, User, check_password_strength, normalize_email
from satchel.domain.audit import (
    ADMIN_INVITATION_RESENT,
    ADMIN_INVITATION_REVOKED,
    ADMIN_USER_INVITED,
    INVITATION_ACCEPTED,
    AuditEvent,
)
from satchel.domain.clock import utcnow
from satchel.domain.invitations import (
    AlreadyHasAccount,
    Invitation,
    InvitationClosed,
    InvitationPending,
    NoSuchInvitation,
    is_invitation_token,
    link_token,
)
from satchel.domain.one_time_links import new_nonce, token_hash
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.security import PasswordHasher


@dataclass(frozen=True)
class NewInvitation:
    invitation: Invitation
    token: str  # for the one who invited, to pass on by hand if mail is not set up; never stored


class Invitations:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        *,
        signup: SignupPolicy,
        key: bytes,
        days: int,
        default_quota: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._signup = signup
        self._key = key
        self._lifetime = timedelta(days=days)
        self._default_quota = default_quota
        self._clock = clock

    async def invite(
        self, email: str, *, is_admin: bool = False, actor: User | None = None, client: str | None = None
    ) -> NewInvitation:
        """Invite an address that has no account and no invitation waiting; the link goes out by mail."""
        self._signup.ensure_invitations()
        email = normalize_email(email)
        now = self._clock()
        async with self._uow() as uow:
            if await uow.users.by_email(email):
                raise AlreadyHasAccount(f"{email} already has an account.")
            if await uow.invitations.pending_for(email, now):
                raise InvitationPending(f"{email} already has an invitation waiting: re-send it instead.")
            nonce, token = self._new_token()
            invitation = await uow.invitations.add(
                email=email,
                is_admin=is_admin,
                token_hash=token_hash(token),
                invited_by_email=actor.email if actor else None,
                expires_at=now + self._lifetime,
                now=now,
            )
            await self._send(uow, invitation, nonce)
            await uow.audit.record(self._event(ADMIN_USER_INVITED, invitation, actor, client))
            await uow.commit()
        return NewInvitation(invitation, token)

    async def resend(
        self, invitation_id: int, *, actor: User | None = None, client: str | None = None
    ) -> NewInvitation:
        """Send a pending or expired invitation again, with a new link that works for the full time again; the
        old link, and any earlier mail still waiting to go, no longer work."""
        self._signup.ensure_invitations()
        now = self._clock()
        async with self._uow() as uow:
            invitation = await self._invitation(uow, invitation_id)
            invitation.ensure_resendable()
            if await uow.users.by_email(invitation.email):
                raise AlreadyHasAccount(f"{invitation.email} already has an account.")
            nonce, token = self._new_token()
            invitation.expires_at = now + self._lifetime
            renewed = await uow.invitations.renew(
                invitation.id, token_hash=token_hash(token), expires_at=invitation.expires_at
            )
            if not renewed:
                raise InvitationClosed()  # accepted or withdrawn since it was read
            await self._send(uow, invitation, nonce)
            await uow.audit.record(self._event(ADMIN_INVITATION_RESENT, invitation, actor, client))
            await uow.commit()
        return NewInvitation(invitation, token)

    async def revoke(self, invitation_id: int, *, actor: User | None = None, client: str | None = None) -> Invitation:
        """Withdraw an invitation: its link no longer opens an account. Withdrawing it twice changes nothing."""
        now = self._clock()
        async with self._uow() as uow:
            invitation = await self._invitation(uow, invitation_id)
            if invitation.revoked_at is not None:
                return invitation
            if invitation.accepted_at is not None or not await uow.invitations.revoke(invitation.id, now):
                raise InvitationClosed("That invitation was already accepted: disable the account instead.")
            invitation.revoked_at = now
            await uow.audit.record(self._event(ADMIN_INVITATION_REVOKED, invitation, actor, client))
            await uow.commit()
        return invitation

    async def list(
        self, *, status: str | None = None, limit: int = 50, offset: int = 0
    ) -> tuple[list[Invitation], int]:
        """A page of invitations, newest first, in one state (``INVITATION_STATUSES``) when ``status`` is given."""
        async with self._uow() as uow:
            return await uow.invitations.list(status=status, now=self._clock(), limit=limit, offset=offset)

    async def opened(self, token: str) -> Invitation:
        """The invitation a link names, while its link opens an account; otherwise an error saying why not."""
        self._signup.ensure_invitation_links()
        async with self._uow() as uow:
            invitation = await uow.invitations.by_token(token_hash(token)) if is_invitation_token(token) else None
        if invitation is None:
            raise NoSuchInvitation()
        invitation.ensure_open(self._clock())
        return invitation

    async def accept(self, token: str, password: str, *, client: str | None = None) -> User:
        """Open the invited account with the password its owner chose, with the default quota, as an
        administrator if invited as one. The invitation is used up in the same transaction, atomically."""
        await self.opened(token)  # says why not before a password is hashed for nothing
        check_password_strength(password)
        password_hash = await self._passwords.hash(password)
        now = self._clock()
        async with self._uow() as uow:
            taken = await uow.invitations.accept(token_hash(token), now)
            if taken is None:  # used, withdrawn or re-sent since it was opened: say which
                await self.opened(token)
                raise NoSuchInvitation()
            if await uow.users.by_email(taken.email):
                raise EmailTaken("An account with this email already exists: sign in instead.")
            user = await uow.users.add(
                email=taken.email, password_hash=password_hash, is_admin=taken.is_admin, quota_bytes=self._default_quota
            )
            event = AuditEvent.of(
                INVITATION_ACCEPTED,
                now,
                actor=user,
                subject=f"user:{user.id}",
                client=client,
                invitation_id=taken.id,
                is_admin=taken.is_admin,
                invited_by=taken.invited_by_email,
            )
            await uow.audit.record(event)
            await uow.commit()
        return user

    def _new_token(self) -> tuple[str, str]:
        nonce = new_nonce()
        return nonce, link_token(self._key, nonce)

    async def _send(self, uow: UnitOfWork, invitation: Invitation, nonce: str) -> None:
        payload = {"notice": "invitation", "invitation_id": invitation.id, "nonce": nonce}
        await uow.jobs.add("mail", payload, queue="mail")

    async def _invitation(self, uow: UnitOfWork, invitation_id: int) -> Invitation:
        invitation = await uow.invitations.get(invitation_id)
        if invitation is None:
            raise NoSuchInvitation("No such invitation.")
        return invitation

    def _event(self, action: str, invitation: Invitation, actor: User | None, client: str | None) -> AuditEvent:
        return AuditEvent.of(
            action,
            self._clock(),
            actor=actor,
            subject=f"invitation:{invitation.id}",
            client=client,
            address=invitation.email,
            is_admin=invitation.is_admin,
            expires_at=invitation.expires_at.isoformat(),
        )
