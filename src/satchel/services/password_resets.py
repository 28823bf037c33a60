"""Password resets: "forgot your password?" answered with a one-time link by email.

Asking does the same work whatever the address: two rate-limit hits and one transaction that queues a mail job
carrying the address and a nonce. Whether an account exists is decided by the worker, which mails a link only to
an active account; so neither the answer, nor its status, nor the time it takes says whether an address has an
account here. Using the link sets the password as a change of password does (every other session ends, every
API token is revoked) and ends every other reset link of the account, in one transaction that uses the link up
atomically.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from satchel.domain.accounts import User, check_password_strength, normalize_email
from satchel.domain.audit import PASSWORD_RESET, PASSWORD_RESET_REQUESTED, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.errors import TooManyAttempts
from satchel.domain.one_time_links import is_link_token, link_token, new_nonce, token_hash
from satchel.domain.password_resets import PER_ADDRESS, PER_CLIENT, NoSuchReset, PasswordReset
from satchel.ports.persistence import UnitOfWorkFactory
from satchel.ports.security import PasswordHasher, RateLimiter

NOTICE = "password_reset"  # the mail job's notice
log = logging.getLogger("satchel.accounts")


@dataclass(frozen=True)
class IssuedReset:
    """A reset link to mail: to whom, its token (never stored), and until when it works."""

    email: str
    token: str
    expires_at: datetime


@dataclass(frozen=True)
class OpenedReset:
    reset: PasswordReset
    email: str  # the account's address, shown on the form so a password manager files the new password right


class PasswordResets:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        limiter: RateLimiter,
        *,
        key: bytes,
        minutes: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._passwords = passwords
        self._limiter = limiter
        self._key = key
        self._lifetime = timedelta(minutes=minutes)
        self._clock = clock

    async def request(self, email: str, *, client: str) -> None:
        """Ask for a reset link to ``email``. Rate-limited per address and per client; otherwise it always
        succeeds the same way, and the worker mails a link only if an active account has that address."""
        email = normalize_email(email)
        for key, (limit, window) in ((f"reset:client:{client}", PER_CLIENT), (f"reset:address:{email}", PER_ADDRESS)):
            if wait := await self._limiter.hit(key, limit=limit, window=window):
                raise TooManyAttempts(wait, "Too many reset links were asked for: wait a while, then try again.")
        payload = {
            "notice": NOTICE,
            "email": email,
            "nonce": new_nonce(),
            "requested_at": self._clock().isoformat(),
            "client": client,
        }
        async with self._uow() as uow:
            await uow.jobs.add("mail", payload, queue="mail")
            await uow.commit()

    async def issue(self, payload: dict[str, Any]) -> IssuedReset | None:
        """For the mail job: the link to send, recording the reset the first time; None when nothing may go out
        (no such account, a disabled one, the link used or expired since). The same job always makes the same link."""
        email, requested = str(payload["email"]), datetime.fromisoformat(str(payload["requested_at"]))
        token = link_token(self._key, "password-reset", str(payload["nonce"]))
        expires_at, now = requested + self._lifetime, self._clock()
        async with self._uow() as uow:
            user = await uow.users.by_email(email)
            if user is None or user.disabled or now >= expires_at:
                return None
            reset = await uow.password_resets.by_token(token_hash(token))
            if reset is None:
                reset = await uow.password_resets.add(
                    user_id=user.id, token_hash=token_hash(token), expires_at=expires_at, now=requested
                )
                event = AuditEvent.of(
                    PASSWORD_RESET_REQUESTED, now, actor=user, subject=f"user:{user.id}", client=payload.get("client")
                )
                await uow.audit.record(event)
                await uow.commit()
        if not reset.is_open(now) or reset.user_id != user.id:
            return None
        return IssuedReset(user.email, token, reset.expires_at)

    async def opened(self, token: str) -> OpenedReset:
        """The reset a link names, while it can set a password; otherwise an error saying why not."""
        async with self._uow() as uow:
            reset = await uow.password_resets.by_token(token_hash(token)) if is_link_token(token) else None
            user = await uow.users.get(reset.user_id) if reset else None
        if reset is None or user is None or user.disabled:
            raise NoSuchReset()
        reset.ensure_open(self._clock())
        return OpenedReset(reset, user.email)

    async def reset(self, token: str, password: str, *, client: str | None = None) -> User:
        """Set the account's new password through its link, used up atomically with every other link of the
        account; every other session ends and every API token is revoked. Returns the updated user, for the
        caller to sign in with."""
        await self.opened(token)  # says why not before a password is hashed for nothing
        check_password_strength(password)
        password_hash = await self._passwords.hash(password)
        now = self._clock()
        async with self._uow() as uow:
            used = await uow.password_resets.use(token_hash(token), now)
            user = await uow.users.get(used.user_id) if used else None
            if used is None or user is None or user.disabled:  # used, replaced or disabled since it was opened
                await self.opened(token)
                raise NoSuchReset()
            await uow.users.set_password(user.id, password_hash)
            others = await uow.password_resets.end_all(user.id, now)
            revoked = await uow.tokens.revoke_all(user.id, now)
            event = AuditEvent.of(
                PASSWORD_RESET,
                now,
                actor=user,
                subject=f"user:{user.id}",
                client=client,
                revoked_tokens=revoked,
                other_links_ended=others,
            )
            await uow.audit.record(event)
            await uow.commit()
        log.info("account.password_reset", extra={"user_id": user.id, "revoked": revoked})
        return replace(user, password_hash=password_hash)
