"""Accounts as their administrators manage them: listed and searched, disabled and enabled, made administrators
or no longer, given a quota.

Each change is written with its audit event in one transaction, by ``actor`` (an administrator in the console
or the API) or, when there is none, by an operator at the command line (``client`` says so). Who may act is the
caller's to check: ``Administration`` asks ``actor.ensure_admin()`` before calling here, and an operator is
trusted as ``satchel jobs retry`` trusts them. The rule that no administrator disables or demotes their own
account is the domain's (``User.ensure_may_restrict``), asked here whenever there is an actor, of the actor and
the account as they are once both are held for the change (``_held``), so no race leaves no administrator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime

from satchel.domain.accounts import QuotaBelowUsage, User, normalize_email
from satchel.domain.audit import (
    ADMIN_GRANTED,
    ADMIN_QUOTA_CHANGED,
    ADMIN_REVOKED,
    ADMIN_USER_DISABLED,
    ADMIN_USER_ENABLED,
    AuditEvent,
)
from satchel.domain.clock import utcnow
from satchel.domain.errors import InvalidInput, NotFound
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory

MAX_SEARCH = 254


@dataclass(frozen=True)
class UserChange:
    """What an administrator changes about an account; None leaves that part as it is."""

    disabled: bool | None = None
    is_admin: bool | None = None
    quota_bytes: int | None = None

    def against(self, user: User) -> UserChange:
        """Only the parts that differ from ``user``: setting what already is changes, and records, nothing."""
        return UserChange(
            disabled=None if self.disabled == user.disabled else self.disabled,
            is_admin=None if self.is_admin == user.is_admin else self.is_admin,
            quota_bytes=None if self.quota_bytes == user.quota_bytes else self.quota_bytes,
        )


class UserAdmin:
    def __init__(self, uow: UnitOfWorkFactory, *, clock: Callable[[], datetime] = utcnow) -> None:
        self._uow = uow
        self._clock = clock

    async def search(self, *, search: str | None = None, limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
        """A page of accounts, newest first, those whose address contains ``search``; and how many match."""
        search = (search or "").strip()[:MAX_SEARCH] or None
        async with self._uow() as uow:
            return await uow.users.search(search=search, limit=limit, offset=offset)

    async def everyone(self) -> list[User]:
        async with self._uow() as uow:
            return await uow.users.list()

    async def get(self, who: int | str) -> User:
        """An account by id, or by address."""
        async with self._uow() as uow:
            return await _account(uow, who)

    async def change(
        self, who: int | str, change: UserChange, *, actor: User | None = None, client: str | None = None
    ) -> User:
        """Apply each part of ``change`` that differs from the account, each recorded as its own event, in one
        transaction: all of them or, when a rule refuses one, none.

        Disabling ends the account's sessions and revokes its API tokens, as a new password does, so enabling it
        again revives neither. A quota is never set below what the account uses, checked in the statement that
        sets it, so an upload finishing meanwhile cannot slip past.
        """
        async with self._uow() as uow:
            user = await _account(uow, who)
            if actor is not None:
                user, actor = await _held(uow, user, actor)
            wanted = change.against(user)
            if actor is not None and (wanted.disabled or wanted.is_admin is False):
                actor.ensure_may_restrict(user)
            if wanted.quota_bytes is not None:
                user.ensure_quota_holds(wanted.quota_bytes)
                if not await uow.users.set_quota(user.id, wanted.quota_bytes):  # it grew past it since it was read
                    (await _account(uow, user.id)).ensure_quota_holds(wanted.quota_bytes)
                    raise QuotaBelowUsage()
                await self._record(
                    uow,
                    ADMIN_QUOTA_CHANGED,
                    user,
                    actor,
                    client,
                    quota_bytes=wanted.quota_bytes,
                    previous_quota_bytes=user.quota_bytes,
                )
            if wanted.is_admin is not None:
                await uow.users.set_admin(user.id, wanted.is_admin)
                await self._record(uow, ADMIN_GRANTED if wanted.is_admin else ADMIN_REVOKED, user, actor, client)
            if wanted.disabled is not None:
                await self._set_disabled(uow, user, wanted.disabled, actor, client)
            await uow.commit()
        return replace(user, **{k: v for k, v in vars(wanted).items() if v is not None})

    async def _set_disabled(
        self, uow: UnitOfWork, user: User, disabled: bool, actor: User | None, client: str | None
    ) -> None:
        await uow.users.set_disabled(user.id, disabled)
        if not disabled:
            await self._record(uow, ADMIN_USER_ENABLED, user, actor, client)
            return
        await uow.users.end_sessions(user.id)
        revoked = await uow.tokens.revoke_all(user.id, self._clock())
        await self._record(uow, ADMIN_USER_DISABLED, user, actor, client, tokens_revoked=revoked)

    async def _record(
        self, uow: UnitOfWork, action: str, user: User, actor: User | None, client: str | None, **details: int
    ) -> None:
        event = AuditEvent.of(action, self._clock(), actor=actor, subject=f"user:{user.id}", client=client)
        event.details.update(address=user.email, **details)
        await uow.audit.record(event)


async def _held(uow: UnitOfWork, user: User, actor: User) -> tuple[User, User]:
    """The account and the administrator changing it, as they are now and held until the change commits: two
    administrators demoting or disabling each other at once are taken one after the other, and the second,
    no longer an administrator, is refused; so an administrator always remains."""
    held = await uow.users.lock({user.id, actor.id})
    if user.id not in held:
        raise NotFound(f"No account {user.id}.")
    actor = held.get(actor.id, actor)
    actor.ensure_admin()
    return held[user.id], actor


async def _account(uow: UnitOfWork, who: int | str) -> User:
    if isinstance(who, int):
        user = await uow.users.get(who)
    else:
        try:
            user = await uow.users.by_email(normalize_email(who))
        except InvalidInput:
            user = None
    if user is None:
        raise NotFound(f"No account {who}." if isinstance(who, int) else f"No account for {who}.")
    return user
