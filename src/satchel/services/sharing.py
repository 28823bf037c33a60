"""Sharing use cases: create and revoke links, open them, authorize downloads."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.accounts import User
from satchel.domain.audit import SHARE_CREATED, SHARE_DOWNLOADED, SHARE_REVOKED, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.errors import InvalidInput, NotFound, TooManyAttempts
from satchel.domain.files import StoredFile, is_file_id
from satchel.domain.sharing import (
    Share,
    ShareTerms,
    ShareUsedUp,
    check_share_password,
    is_share_token,
    new_share_token,
    share_lifetime,
)
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.security import PasswordHasher, RateLimiter

PASSWORD_ATTEMPTS = (5, 60)  # per share and client, per minute
MAX_FILES_PER_SHARE = 100


@dataclass(frozen=True)
class ShareView:
    """A share with its files, as its page and API show it."""

    share: Share
    files: list[StoredFile]

    def file(self, file_id: str) -> StoredFile:
        for file in self.files:
            if file.id == file_id:
                return file
        raise NotFound("No such file in this share.")


def ensure_shareable(count: int) -> None:
    """One link holds at least one file, and no more than ``MAX_FILES_PER_SHARE``."""
    if not 1 <= count <= MAX_FILES_PER_SHARE:
        raise InvalidInput(f"Share between 1 and {MAX_FILES_PER_SHARE} files.")


class Sharing:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        passwords: PasswordHasher,
        limiter: RateLimiter,
        *,
        max_days: int,
        default_days: int,
        scan_required: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._scan_required = scan_required
        self._uow = uow
        self._passwords = passwords
        self._limiter = limiter
        self._max_days = max_days
        self._default_days = default_days
        self._clock = clock

    def terms(
        self,
        expires_in_hours: float | None = None,
        max_downloads: int | None = None,
        note: str | None = None,
        *,
        delete_files_when_done: bool = False,
        notify: Iterable[str] = (),
        allow_previews: bool = False,
        title: str | None = None,
    ) -> ShareTerms:
        """What an owner asks for, as terms checked against this server's limits: the default expiry when no
        hours are given, never beyond the maximum. Every route that makes a link starts here."""
        expires_in = share_lifetime(expires_in_hours, default_days=self._default_days, max_days=self._max_days)
        terms = ShareTerms(
            expires_in, max_downloads, note, delete_files_when_done, tuple(notify), allow_previews, title
        )
        return terms.validated(self._max_days)

    async def create(
        self,
        owner: User,
        file_ids: list[str],
        terms: ShareTerms,
        *,
        password: str | None = None,
        client: str | None = None,
    ) -> ShareView:
        """A new link to some of the owner's files."""
        owner.ensure_active()
        terms = terms.validated(self._max_days)
        file_ids = list(dict.fromkeys(file_ids))
        ensure_shareable(len(file_ids))
        if not all(is_file_id(i) for i in file_ids):
            raise NotFound("No such file.")
        password_hash = await self.lock_with(password)
        async with self._uow() as uow:
            files = await uow.files.get_many(file_ids)
            if len(files) != len(file_ids) or any(f.owner_id != owner.id for f in files):
                raise NotFound("No such file.")
            view = await self.add(uow, owner, files, terms, password_hash=password_hash, client=client)
            await uow.commit()
        return view

    async def lock_with(self, password: str | None) -> str | None:
        """The hash a new link keeps of its password, or None for a link without one."""
        if not password:
            return None
        check_share_password(password)
        return await self._passwords.hash(password)

    async def add(
        self,
        uow: UnitOfWork,
        owner: User,
        files: list[StoredFile],
        terms: ShareTerms,
        *,
        password_hash: str | None,
        client: str | None,
    ) -> ShareView:
        """A link to ``files`` (the owner's, checked by the caller) in the caller's transaction: the share, the
        mail to each recipient and the audit event, all committed with whatever else that transaction holds."""
        ensure_shareable(len(files))
        terms = terms.validated(self._max_days)
        now = self._clock()
        share = await uow.shares.add(
            token=new_share_token(),
            owner_id=owner.id,
            file_ids=[f.id for f in files],
            expires_at=now + terms.expires_in,
            max_downloads=terms.max_downloads,
            password_hash=password_hash,
            note=terms.note,
            now=now,
            delete_files_when_done=terms.delete_files_when_done,
            allow_previews=terms.allow_previews,
            title=terms.title,
        )
        for recipient in terms.notify:
            payload = {"notice": "share_invitation", "share_id": share.id, "recipient": recipient}
            await uow.jobs.add("mail", payload, queue="mail")
        event = AuditEvent.of(
            SHARE_CREATED,
            now,
            actor=owner,
            subject=f"share:{share.id}",
            client=client,
            files=share.file_ids,
            expires_at=share.expires_at.isoformat(),
            max_downloads=share.max_downloads,
            password=share.has_password,
            allow_previews=share.allow_previews,
        )
        await uow.audit.record(event)
        return ShareView(share, files)

    async def owned(self, owner: User, share_id: int) -> ShareView:
        async with self._uow() as uow:
            share = await uow.shares.get(share_id)
            if share is None or share.owner_id != owner.id:
                raise NotFound("No such share.")
            return ShareView(share, await uow.files.get_many(share.file_ids))

    async def open_link(self, owner: User, share_id: int) -> Share:
        """One of the owner's links while it still opens (a QR code of one that leads nowhere helps nobody)."""
        share = (await self.owned(owner, share_id)).share
        share.ensure_open(self._clock())
        return share

    async def list_owned(self, owner: User, *, limit: int = 50, offset: int = 0) -> tuple[list[ShareView], int]:
        async with self._uow() as uow:
            shares, total = await uow.shares.list_for(owner.id, limit=limit, offset=offset)
        return await self.with_files(shares), total

    async def with_files(self, shares: list[Share]) -> list[ShareView]:
        """Shares with their files, fetched in one query."""
        async with self._uow() as uow:
            files = {f.id: f for f in await uow.files.get_many([i for s in shares for i in s.file_ids])}
        return [ShareView(s, [files[i] for i in s.file_ids if i in files]) for s in shares]

    async def revoke(self, owner: User, share_id: int, *, client: str | None = None) -> None:
        await self.end(owner, share_id, action=SHARE_REVOKED, client=client, any_owner=False)

    async def end(self, actor: User, share_id: int, *, action: str, client: str | None, any_owner: bool) -> Share:
        """The one way a link is revoked, with the event ``action``; ``any_owner`` lets ``actor`` revoke
        another's link (administration, which checks it). Returns the share as it was."""
        async with self._uow() as uow:
            share = await uow.shares.get(share_id)
            if share is None or not (any_owner or share.owner_id == actor.id):
                raise NotFound("No such share.")
            now = self._clock()
            await uow.shares.revoke(share.id, now)
            event = AuditEvent.of(
                action,
                now,
                actor=actor,
                subject=f"share:{share.id}",
                client=client,
                owner_id=share.owner_id,
                files=share.file_ids,
                already_revoked=share.revoked_at is not None,
            )
            await uow.audit.record(event)
            await uow.commit()
        return share

    async def open(self, token: str) -> ShareView:
        """The public view of a link, or why it can no longer be used."""
        if not is_share_token(token):
            raise NotFound("There is no such link.")
        async with self._uow() as uow:
            share = await uow.shares.by_token(token)
            if share is None:
                raise NotFound("There is no such link.")
            share.ensure_open(self._clock())
            return ShareView(share, await uow.files.get_many(share.file_ids))

    async def unlock(self, view: ShareView, password: str, *, client: str) -> bool:
        """Check a share's password, rate-limited per share and client."""
        limit, window = PASSWORD_ATTEMPTS
        if wait := await self._limiter.hit(f"share-password:{view.share.id}:{client}", limit=limit, window=window):
            raise TooManyAttempts(wait, "Too many password attempts; wait a minute.")
        if view.share.password_hash is None:
            raise InvalidInput("This link has no password.")
        try:
            check_share_password(password)
        except InvalidInput:
            return False  # no link was ever locked with it, and the hasher could not take it
        return await self._passwords.verify(view.share.password_hash, password)

    async def take_download(
        self, view: ShareView, files: list[StoredFile], *, unlocked: bool, client: str | None = None
    ) -> None:
        """Authorize one download of ``files`` and count it, atomically, whichever process serves it."""
        now = self._clock()
        view.share.authorize_download(now, unlocked=unlocked)
        if not files:
            raise NotFound("This link has no files left.")
        for file in files:
            file.ensure_downloadable(scan_required=self._scan_required)
        async with self._uow() as uow:
            taken = await uow.shares.take_download(view.share.id, now)
            if taken is not None:  # counted and recorded together, or neither
                event = AuditEvent.of(
                    SHARE_DOWNLOADED,
                    now,
                    subject=f"share:{view.share.id}",
                    client=client,
                    files=[f.id for f in files],
                    names=[f.name for f in files][:20],
                    count=taken,
                )
                await uow.audit.record(event)
            if taken == 1:  # the owner hears about the first download, once
                payload = {"notice": "first_download", "share_id": view.share.id}
                await uow.jobs.add("mail", payload, queue="mail")
            await uow.commit()
            if taken is None:  # changed between our read and our write: say how
                current = await uow.shares.get(view.share.id)
                if current is not None:
                    current.ensure_open(now)
                raise ShareUsedUp()
