"""Upload requests use cases: ask for files by link, and take them in from anyone who has it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.accounts import User
from satchel.domain.clock import utcnow
from satchel.domain.errors import InvalidInput, NotFound, TooManyAttempts
from satchel.domain.files import StoredFile
from satchel.domain.requests import (
    RequestPasswordRequired,
    RequestTerms,
    RequestTooLarge,
    UploadNotFromPage,
    UploadRequest,
)
from satchel.domain.sharing import check_share_password, is_share_token, new_share_token, share_lifetime
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory
from satchel.ports.security import PasswordHasher, RateLimiter
from satchel.services.files import Files

log = logging.getLogger("satchel.requests")
PASSWORD_ATTEMPTS = (5, 60)  # per request and client, per minute
UPLOADS_PER_CLIENT = (60, 3600)  # files per request and client, per hour: a stranger cannot flood an owner


@dataclass(frozen=True)
class RequestView:
    """A request with the files that came in through it, as its owner's page and the API show it."""

    request: UploadRequest
    files: list[StoredFile]


@dataclass(frozen=True)
class OpenRequest:
    """A request found by its link, and whose account the files go to (uploaders see its terms and the email)."""

    request: UploadRequest
    owner: User

    @property
    def owner_email(self) -> str:
        return self.owner.email


@dataclass(frozen=True)
class Credentials:
    """What an uploader shows a link that has a password: the password itself (scripts send it with each
    request), or a browser session that gave it (``unlocked``), with the proof the request comes from that
    session's own page (``from_page``: the edge checked its CSRF token)."""

    password: str | None = None
    unlocked: frozenset[int] = frozenset()  # ids of the requests this browser session unlocked
    from_page: bool = False


class Requests:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        files: Files,
        passwords: PasswordHasher,
        limiter: RateLimiter,
        *,
        max_days: int,
        default_days: int,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._files = files
        self._passwords = passwords
        self._limiter = limiter
        self._max_days = max_days
        self._default_days = default_days
        self._clock = clock

    def terms(
        self,
        expires_in_hours: float | None = None,
        max_files: int | None = None,
        max_bytes: int | None = None,
        note: str | None = None,
    ) -> RequestTerms:
        """What an owner asks for, checked against this server's limits (the share expiry policy applies)."""
        expires_in = share_lifetime(expires_in_hours, default_days=self._default_days, max_days=self._max_days)
        return RequestTerms(expires_in, max_files, max_bytes, note).validated(max_days=self._max_days)

    async def create(self, owner: User, terms: RequestTerms, *, password: str | None = None) -> UploadRequest:
        """A new link through which anyone may upload into the owner's account."""
        owner.ensure_active()
        terms = terms.validated(max_days=self._max_days)
        if password:
            check_share_password(password)
        password_hash = await self._passwords.hash(password) if password else None
        now = self._clock()
        async with self._uow() as uow:
            request = await uow.requests.add(
                token=new_share_token(),
                owner_id=owner.id,
                expires_at=now + terms.expires_in,
                max_files=terms.max_files,
                max_bytes=terms.max_bytes,
                password_hash=password_hash,
                note=terms.note,
                now=now,
            )
            await uow.commit()
        log.info("request.created", extra={"request_id": request.id, "owner_id": owner.id})
        return request

    async def list_owned(self, owner: User, *, limit: int = 50, offset: int = 0) -> tuple[list[UploadRequest], int]:
        async with self._uow() as uow:
            return await uow.requests.list_for(owner.id, limit=limit, offset=offset)

    async def owned(self, owner: User, request_id: int) -> RequestView:
        async with self._uow() as uow:
            request = _owned_by(owner, await uow.requests.get(request_id))
            return RequestView(request, await uow.requests.received(request.id))

    async def open_link(self, owner: User, request_id: int) -> UploadRequest:
        """One of the owner's upload links while it still takes files (a QR code of one that leads nowhere helps
        nobody)."""
        async with self._uow() as uow:
            request = _owned_by(owner, await uow.requests.get(request_id))
        request.ensure_open(self._clock())
        return request

    async def revoke(self, owner: User, request_id: int) -> None:
        async with self._uow() as uow:
            request = _owned_by(owner, await uow.requests.get(request_id))
            await uow.requests.revoke(request.id, self._clock())
            await uow.commit()

    async def open(self, token: str) -> OpenRequest:
        """The public view of a request link, or why it can no longer be used."""
        found = await self.find(token)
        found.request.ensure_open(self._clock())
        return found

    async def find(self, token: str) -> OpenRequest:
        """The request a link names, open or not (``open`` says whether it may still be used)."""
        if not is_share_token(token):
            raise NotFound("There is no such upload link.")
        async with self._uow() as uow:
            request = await uow.requests.by_token(token)
            owner = await uow.users.get(request.owner_id) if request else None
        if request is None or owner is None or owner.disabled:
            raise NotFound("There is no such upload link.")
        return OpenRequest(request, owner)

    async def admit(
        self, request: UploadRequest, credentials: Credentials, *, client: str, counted: bool = True
    ) -> None:
        """Let an uploader past the request's password, if it has one. A password given is counted against the
        guessing limit unless ``counted`` is False: for requests on an upload the link already holds, which
        only someone who gave the password when starting it could name (a file sent in many requests must not
        run into the limit)."""
        if not request.has_password:
            return
        if credentials.password:
            correct = (
                await self.unlock(request, credentials.password, client=client)
                if counted
                else await self._verify(request, credentials.password)
            )
            if correct:
                return
        elif request.id in credentials.unlocked:
            if not credentials.from_page:
                raise UploadNotFromPage()  # the session is ambient authority: another site's page must not use it
            return
        raise RequestPasswordRequired("This upload link needs its password.")

    async def unlock(self, request: UploadRequest, password: str, *, client: str) -> bool:
        """Check a request's password, rate-limited per request and client."""
        limit, window = PASSWORD_ATTEMPTS
        if wait := await self._limiter.hit(f"request-password:{request.id}:{client}", limit=limit, window=window):
            raise TooManyAttempts(wait, "Too many password attempts; wait a minute.")
        if request.password_hash is None:
            raise InvalidInput("This upload link has no password.")
        return await self._verify(request, password)

    async def _verify(self, request: UploadRequest, password: str) -> bool:
        try:
            check_share_password(password)
        except InvalidInput:
            return False
        return request.password_hash is not None and await self._passwords.verify(request.password_hash, password)

    async def count_upload(self, request: UploadRequest, client: str) -> None:
        """One more file started through ``request`` by ``client``: a stranger cannot flood the owner."""
        limit, window = UPLOADS_PER_CLIENT
        if wait := await self._limiter.hit(f"request-upload:{request.id}:{client}", limit=limit, window=window):
            raise TooManyAttempts(wait, "Too many uploads through this link; wait a while.")

    def taking(self, request: UploadRequest) -> Callable[[UnitOfWork, StoredFile], Awaitable[None]]:
        """What counts a file in through ``request``, in the transaction that records it: the request's atomic
        take (refused, with the reason, when a concurrent upload took the room first) and the owner's mail."""

        async def take(uow: UnitOfWork, file: StoredFile) -> None:
            now = self._clock()
            if not await uow.requests.take(request.id, file.id, file.size, now):
                current = await uow.requests.get(request.id)
                raise (current or request).refusal(now, file.size)
            payload = {"notice": "request_received", "request_id": request.id, "file_id": file.id}
            await uow.jobs.add("mail", payload, queue="mail")

        return take

    async def receive(
        self,
        token: str,
        name: str,
        chunks: AsyncIterator[bytes],
        *,
        credentials: Credentials,
        client: str,
        content_type: str | None = None,
        declared_size: int | None = None,
    ) -> StoredFile:
        """Take one file in through the link ``token``: into its owner's account and quota, within the request's
        limits (checked before the first byte, while streaming, and atomically as the file is recorded), with
        a mail to the owner in the same transaction. On any refusal nothing of the file is left."""
        opened = await self.open(token)
        request = opened.request
        await self.admit(request, credentials, client=client)
        request.authorize_upload(self._clock(), unlocked=True, size=declared_size)
        await self.count_upload(request, client)
        cap = None if request.remaining_bytes is None else (request.remaining_bytes, RequestTooLarge())
        file = await self._files.upload(
            opened.owner,
            name,
            chunks,
            content_type=content_type,
            declared_size=declared_size,
            cap=cap,
            also=self.taking(request),
            client=client,
        )
        log.info("request.received", extra={"request_id": request.id, "file_id": file.id, "size": file.size})
        return file


def _owned_by(owner: User, request: UploadRequest | None) -> UploadRequest:
    # Someone else's request answers exactly like a missing one: ids are not an oracle.
    if request is None or request.owner_id != owner.id:
        raise NotFound("No such upload request.")
    return request
