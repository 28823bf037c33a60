"""Accounts use cases: sign-up, sign-in, passwords, API tokens, and opening an account for someone."""

from __future__ import annotations

import hashlib
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from satchel.domain.accounts import (
    ApiToken,
    EmailTaken,
    InvalidCredentials,
    SignupPolicy,
    User,
    check_password_strength,
    check_quota,
    clean_token_name,
    normalize_email,
)
from satchel.domain.audit import ADMIN_USER_CREATED, SIGN_IN_FAILED, SIGNED_IN, SIGNED_UP, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.errors import InvalidInput, NotFound, TooManyAttempts
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.ports.security import PasswordHasher, RateLimiter

TOKEN_PREFIX = "sat_"  # noqa: S105 (a marker, not a secret)
LOGIN_ATTEMPTS = (10, 300)  # per email and client, per five minutes
TOUCH_EVERY = timedelta(minutes=1)  # last-used times are kept to the minute, not written per request

log = logging.getLogger("satchel.accounts")


def hash_token(token: str) -> str:
    """API tokens carry 256 random bits, so a fast hash is as safe as a slow one and costs nothing."""
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class NewToken:
    token: ApiToken
    secret: str  # shown once, never stored


class Accounts:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        limiter: RateLimiter,
        *,
        default_quota: int,
        signup: SignupPolicy,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._limiter = limiter
        self._default_quota = default_quota
        self._signup = signup
        self._clock = clock
        self._decoy_hash = ""

    async def _ensure_decoy(self) -> None:
        if not self._decoy_hash:
            self._decoy_hash = await self._passwords.hash(secrets.token_urlsafe(16))

    async def sign_up(self, email: str, password: str, *, client: str | None = None) -> User:
        """Open an account for oneself, if the sign-up policy lets anyone (``open``); recorded as
        ``account.signed_up``."""
        self._signup.ensure_sign_up()

        def signed_up(user: User) -> AuditEvent:
            return AuditEvent.of(SIGNED_UP, self._clock(), actor=user, subject=f"user:{user.id}", client=client)

        return await self._open(email, password, is_admin=False, quota=self._default_quota, event=signed_up)

    async def create_user(
        self,
        email: str,
        password: str,
        *,
        is_admin: bool = False,
        quota_bytes: int | None = None,
        actor: User | None = None,
        client: str | None = None,
    ) -> User:
        """Open an account for someone, whatever the sign-up policy (administrators, operators at the command
        line); recorded as ``admin.user_created`` by ``actor``, or by an operator when there is none. Who may is
        the caller's to check (``Administration.create_user`` asks ``ensure_admin``)."""
        quota = self._default_quota if quota_bytes is None else quota_bytes
        check_quota(quota)

        def created(user: User) -> AuditEvent:
            return AuditEvent.of(
                ADMIN_USER_CREATED,
                self._clock(),
                actor=actor,
                subject=f"user:{user.id}",
                client=client,
                address=user.email,
                is_admin=user.is_admin,
                quota_bytes=user.quota_bytes,
            )

        return await self._open(email, password, is_admin=is_admin, quota=quota, event=created)

    async def _open(
        self, email: str, password: str, *, is_admin: bool, quota: int, event: Callable[[User], AuditEvent]
    ) -> User:
        """One new account and its audit event, in one transaction."""
        email = normalize_email(email)
        check_password_strength(password)
        password_hash = await self._passwords.hash(password)
        async with self._uow() as uow:
            if await uow.users.by_email(email):
                raise EmailTaken()
            user = await uow.users.add(email=email, password_hash=password_hash, is_admin=is_admin, quota_bytes=quota)
            await uow.audit.record(event(user))
            await uow.commit()
        return user

    async def sign_in(self, email: str, password: str, *, client: str) -> User:
        """Check credentials, rate-limited per email and client so guessing does not scale."""
        try:
            email = normalize_email(email)
        except InvalidInput:
            raise InvalidCredentials() from None
        limit, window = LOGIN_ATTEMPTS
        if wait := await self._limiter.hit(f"login:{email}:{client}", limit=limit, window=window):
            raise TooManyAttempts(wait)
        await self._ensure_decoy()
        async with self._uow() as uow:
            user = await uow.users.by_email(email)
        if user is None:
            await self._passwords.verify(self._decoy_hash, password)  # same time as a real check: no email oracle
            await self._audit_sign_in(SIGN_IN_FAILED, None, email, client, reason="no such account")
            raise InvalidCredentials()
        if not await self._passwords.verify(user.password_hash, password):
            await self._audit_sign_in(SIGN_IN_FAILED, user, email, client, reason="wrong password")
            raise InvalidCredentials()
        if user.disabled:
            await self._audit_sign_in(SIGN_IN_FAILED, user, email, client, reason="disabled")
        user.ensure_active()
        await self._audit_sign_in(SIGNED_IN, user, email, client)
        return user

    async def _audit_sign_in(self, action: str, user: User | None, email: str, client: str, **details: str) -> None:
        # The address tried is kept as given (normalized), never the password.
        event = AuditEvent.of(
            action, self._clock(), actor=user, email=email, subject=f"user:{user.id}" if user else None, client=client
        )
        event.details.update(details)
        async with self._uow() as uow:
            if user is not None and action == SIGNED_IN:
                await uow.users.signed_in(user.id, event.at)
            await uow.audit.record(event)
            await uow.commit()

    async def active_user(self, user_id: int, *, stamp: str | None) -> User | None:
        """The user a session belongs to, while the account is usable and its password is the one signed in with."""
        async with self._uow() as uow:
            user = await uow.users.get(user_id)
        if user is None or user.disabled or not user.signed_in_with(stamp):
            return None
        return user

    async def change_password(self, user: User, current: str, new: str) -> User:
        """Replace the password, ending every other session, revoking every API token and ending every reset link
        not yet used; returns the updated user.

        Other sessions end because their stamp no longer matches (``active_user``); the caller
        re-stamps its own session with the returned user's ``session_stamp`` to stay signed in.
        """
        if not await self._passwords.verify(user.password_hash, current):
            raise InvalidCredentials("Your current password is not right.")
        check_password_strength(new)
        password_hash = await self._passwords.hash(new)
        async with self._uow() as uow:
            await uow.users.set_password(user.id, password_hash)
            revoked = await uow.tokens.revoke_all(user.id, self._clock())
            await uow.password_resets.end_all(user.id, self._clock())  # a link asked for before no longer works
            await uow.commit()
        log.info("account.password_changed", extra={"user_id": user.id, "revoked": revoked})
        return replace(user, password_hash=password_hash)

    async def create_token(self, user: User, name: str) -> NewToken:
        name = clean_token_name(name)
        secret = TOKEN_PREFIX + secrets.token_urlsafe(32)
        async with self._uow() as uow:
            token = await uow.tokens.add(
                user_id=user.id, name=name, prefix=secret[: len(TOKEN_PREFIX) + 6], token_hash=hash_token(secret)
            )
            await uow.commit()
        return NewToken(token, secret)

    async def tokens(self, user: User) -> list[ApiToken]:
        async with self._uow() as uow:
            return await uow.tokens.list_for(user.id)

    async def revoke_token(self, user: User, token_id: int) -> None:
        async with self._uow() as uow:
            if not await uow.tokens.revoke(user.id, token_id, self._clock()):
                raise NotFound("No such token.")
            await uow.commit()

    async def authenticate_token(self, secret: str) -> User | None:
        """The active user a bearer token belongs to, recording when it was last used."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        now = self._clock()
        async with self._uow() as uow:
            found = await uow.tokens.owner_of(hash_token(secret))
            if found is None:
                return None
            token, user = found
            if token.last_used_at is None or now - token.last_used_at > TOUCH_EVERY:
                await uow.tokens.touch(token.id, now)
                await uow.commit()
        return None if user.disabled else user

    async def token_for(self, email: str, name: str) -> NewToken:
        async with self._uow() as uow:
            user = await uow.users.by_email(normalize_email(email))
        if user is None:
            raise NotFound(f"No account for {email}.")
        return await self.create_token(user, name)
