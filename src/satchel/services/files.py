"""Files use cases: streamed upload, listing, renaming, deleting."""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime

from satchel.domain.accounts import QuotaExceeded, User
from satchel.domain.audit import FILE_DELETED, FILE_UPLOADED, AuditEvent
from satchel.domain.clock import utcnow
from satchel.domain.errors import DomainError, InvalidInput, NotFound, TooLarge, TooManyAttempts
from satchel.domain.files import PENDING, UNSCANNED, EmptyFile, StoredFile, clean_file_name
from satchel.domain.previews import SNIFF_BYTES, TEXT, decode_text, preview_type
from satchel.domain.sharing import Share
from satchel.ports.persistence import FILE_SORTS, UnitOfWork, UnitOfWorkFactory
from satchel.ports.security import RateLimiter
from satchel.ports.storage import ObjectStore
from satchel.services.previews import sniff

log = logging.getLogger("satchel.files")
UPLOADS_PER_MINUTE = 120
THUMBNAIL_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp", "image/bmp", "image/tiff")
SORTS = tuple(FILE_SORTS)  # the names a listing can be sorted by, defined with the repositories' port
MAX_PAGE = 200
_MEDIA_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,62}/[a-z0-9][a-z0-9!#$&^_.+-]{0,62}")  # RFC 6838 names only


class UploadTooLarge(TooLarge):
    """This file is larger than this server accepts."""


SNIPPET_MAX_BYTES = 1_000_000  # what a text preview shows whole; longer text is a file to upload


class SnippetTooLarge(TooLarge):
    """A snippet holds at most 1 MB of text: upload longer text as a file."""


class SnippetNotText(InvalidInput):
    """A snippet is UTF-8 text: upload other bytes as a file."""


class Meter:
    """Counts and hashes bytes as they stream past, keeps the first ones (``head``, to tell the file's type),
    and stops the stream at the limit."""

    def __init__(self, chunks: AsyncIterator[bytes], limit: int, error: TooLarge) -> None:
        self._chunks = chunks
        self._limit = limit
        self._error = error
        self.size = 0
        self.head = b""
        self.failure: Exception | None = None
        self._sha = hashlib.sha256()

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._chunks:
                self.size += len(chunk)
                if self.size > self._limit:
                    raise self._error
                self._sha.update(chunk)
                if len(self.head) < SNIFF_BYTES:
                    self.head += chunk[: SNIFF_BYTES - len(self.head)]
                yield chunk
        except Exception as exc:  # remembered: the object store may wrap what it sees
            self.failure = exc
            raise


@dataclass(frozen=True)
class Landed:
    """Bytes an upload put in the store, measured on the way: what ``record`` (or ``add``) makes a file of."""

    name: str
    key: str
    size: int
    sha256: str
    content_type: str
    preview_type: str | None = None  # as decided from the first bytes; None: read them back from the store


@dataclass(frozen=True)
class FileDetails:
    file: StoredFile
    shares: list[Share]


def storage_key(now: datetime, unique: str | None = None) -> str:
    """Generated, never derived from user input; dated prefixes keep listings manageable."""
    return f"files/{now:%Y/%m}/{unique or secrets.token_hex(16)}"


class Files:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        store: ObjectStore,
        limiter: RateLimiter,
        *,
        max_upload_bytes: int,
        scanning: bool = False,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._scanning = scanning
        self._uow = uow
        self._store = store
        self._limiter = limiter
        self._max_upload = max_upload_bytes
        self._clock = clock

    async def upload(
        self,
        owner: User,
        name: str,
        chunks: AsyncIterator[bytes],
        *,
        content_type: str | None = None,
        declared_size: int | None = None,
        cap: tuple[int, TooLarge] | None = None,
        also: Callable[[UnitOfWork, StoredFile], Awaitable[None]] | None = None,
        client: str | None = None,
        previewed_as: str | None = None,
    ) -> StoredFile:
        """Stream bytes to storage, then record the file; on any failure neither is left behind.

        ``cap`` is a further limit on the size (bytes, and the error past them), checked while streaming;
        ``also`` joins the transaction that records the file (see ``record``). The file's preview type is
        decided from its first bytes, unless the caller vouches for one (``previewed_as``: a snippet)."""
        name = await self.admit(owner, name, declared_size)
        landed = await self.land(name, chunks, room=owner.remaining_bytes, cap=cap, content_type=content_type)
        return await self.record(
            owner,
            name,
            landed.key,
            size=landed.size,
            sha256=landed.sha256,
            content_type=landed.content_type,
            also=also,
            client=client,
            previewed_as=previewed_as or landed.preview_type,
        )

    async def paste(
        self, owner: User, text: bytes, *, name: str | None = None, client: str | None = None
    ) -> StoredFile:
        """A snippet: UTF-8 text kept as a file, through the same upload as any other (quota, checksum, jobs,
        audit), and shown as text whatever it says (pasted HTML is shown as its source, never rendered)."""
        if not text:
            raise EmptyFile("There is no text to keep: paste some first.")
        if len(text) > SNIPPET_MAX_BYTES:
            raise SnippetTooLarge()
        if decode_text(text, whole=True) is None:
            raise SnippetNotText()

        async def body() -> AsyncIterator[bytes]:
            yield text

        name = f"snippet {self._clock():%Y-%m-%d %H.%M.%S}.txt" if name is None else name
        return await self.upload(
            owner, name, body(), content_type=TEXT, declared_size=len(text), client=client, previewed_as=TEXT
        )

    async def land(
        self,
        name: str,
        chunks: AsyncIterator[bytes],
        *,
        room: int,
        cap: tuple[int, TooLarge] | None = None,
        content_type: str | None = None,
    ) -> Landed:
        """Stream bytes to a new key, counted and hashed on the way, stopped past this server's maximum, ``room``
        (what is left of the owner's quota) or ``cap``. On failure, or when nothing came, nothing stays stored."""
        too_large: TooLarge = UploadTooLarge() if room >= self._max_upload else QuotaExceeded()
        limit = min(self._max_upload, room)
        if cap is not None and cap[0] < limit:
            limit, too_large = cap
        meter = Meter(chunks, limit, too_large)
        content_type = content_type_for(name, content_type)
        key = storage_key(self._clock())
        try:
            await self._store.put_stream(key, aiter(meter), content_type=content_type, filename=name)
        except BaseException as exc:
            await self.discard(key)  # a partial object must not outlive the request
            if meter.failure is not None and meter.failure is not exc:
                raise meter.failure from None
            raise
        if meter.size == 0:
            await self.discard(key)
            raise EmptyFile()
        previewed_as = preview_type(meter.head, whole=meter.size <= len(meter.head))
        return Landed(name, key, meter.size, meter.sha256, content_type, previewed_as)

    async def record(
        self,
        owner: User,
        name: str,
        key: str,
        *,
        size: int,
        sha256: str,
        content_type: str,
        also: Callable[[UnitOfWork, StoredFile], Awaitable[None]] | None = None,
        keep_on_outage: bool = False,
        client: str | None = None,
        previewed_as: str | None = None,
    ) -> StoredFile:
        """Record bytes already stored under ``key`` as the owner's file, with its follow-up jobs (and ``also``),
        in one transaction. On failure the bytes are removed, so nothing of the upload is left behind; with
        ``keep_on_outage`` they stay when a backing service failed, for a later attempt to record them.
        Unless ``previewed_as`` says it, the type the file is previewed as is read from its first bytes."""
        try:
            landed = Landed(name, key, size, sha256, content_type, previewed_as or await sniff(self._store, key, size))
            async with self._uow() as uow:
                record = await self.add(uow, owner, landed, client=client)
                if also is not None:
                    await also(uow, record)
                await uow.commit()
        except BaseException as exc:
            if not (keep_on_outage and not isinstance(exc, DomainError)):
                await self.discard(key)
            raise
        return record

    async def add(self, uow: UnitOfWork, owner: User, landed: Landed, *, client: str | None) -> StoredFile:
        """Landed bytes as the owner's file, in the caller's transaction: its row, the quota it takes (or
        QuotaExceeded when a concurrent upload took the room first), its follow-up jobs and its audit event."""
        record = StoredFile(
            id=secrets.token_hex(16),
            owner_id=owner.id,
            name=landed.name,
            size=landed.size,
            content_type=landed.content_type,
            sha256=landed.sha256,
            storage_key=landed.key,
            created_at=self._clock(),
            scan_status=PENDING if self._scanning else UNSCANNED,
            preview_type=landed.preview_type,
        )
        if not await uow.users.reserve_bytes(owner.id, record.size):
            raise QuotaExceeded()
        await uow.files.add(record)
        # Follow-up work joins the same transaction: no file without its jobs, no job without its file.
        if self._scanning:
            await uow.jobs.add("scan", {"file_id": record.id}, queue="scan")
        if record.content_type in THUMBNAIL_TYPES:
            await uow.jobs.add("thumbnail", {"file_id": record.id}, queue="media", max_attempts=3)
        event = AuditEvent.of(
            FILE_UPLOADED,
            record.created_at,
            actor=owner,
            subject=f"file:{record.id}",
            client=client,
            name=record.name,
            size=record.size,
        )
        await uow.audit.record(event)
        return record

    async def checksum(self, key: str) -> str:
        """The SHA-256 of bytes already stored under ``key``."""
        return await self._store.sha256(key)

    async def discard(self, key: str) -> None:
        """Best-effort removal of bytes after a failure; the original error is what the caller must see."""
        try:
            await self._store.delete(key)
        except Exception as exc:  # `satchel storage verify --fix` is the backstop for what stays behind
            log.warning("upload.cleanup_failed", extra={"storage_key": key, "error": type(exc).__name__})

    async def admit(self, owner: User, name: str, size: int | None, *, rate_limited: bool = True) -> str:
        """What every upload, plain, resumable or imported, passes before its first byte: an active account, a
        usable name, the rate limit (not for an operator's import, which may bring thousands of files) and, when
        it is known, a size this server and the owner's quota can take. Returns the name as it will be stored."""
        owner.ensure_active()
        name = clean_file_name(name)
        if rate_limited and (
            wait := await self._limiter.hit(f"upload:{owner.id}", limit=UPLOADS_PER_MINUTE, window=60)
        ):
            raise TooManyAttempts(wait, "Too many uploads; wait a moment.")
        if size is not None:
            self._check_size(owner, size)
        return name

    def _check_size(self, owner: User, size: int) -> None:
        if size < 0:
            raise InvalidInput("The size cannot be negative.")
        if size == 0:
            raise EmptyFile()
        if size > self._max_upload:
            raise UploadTooLarge()
        owner.ensure_room_for(size)

    async def owned(self, owner: User, file_id: str) -> StoredFile:
        async with self._uow() as uow:
            return _owned_by(owner, await uow.files.get(file_id))

    async def details(self, owner: User, file_id: str) -> FileDetails:
        async with self._uow() as uow:
            file = _owned_by(owner, await uow.files.get(file_id))
            return FileDetails(file, await uow.shares.for_file(file.id))

    async def list_owned(
        self, owner: User, *, sort: str = "-created", limit: int = 50, offset: int = 0
    ) -> tuple[list[StoredFile], int]:
        if sort not in SORTS:
            raise InvalidInput(f"Sort by one of: {', '.join(SORTS)}.")
        if not 1 <= limit <= MAX_PAGE or offset < 0:
            raise InvalidInput(f"Pages hold 1 to {MAX_PAGE} items.")
        async with self._uow() as uow:
            return await uow.files.list_for(owner.id, sort=sort, limit=limit, offset=offset)

    async def rename(self, owner: User, file_id: str, name: str) -> StoredFile:
        name = clean_file_name(name)
        async with self._uow() as uow:
            file = _owned_by(owner, await uow.files.get(file_id))
            await uow.files.rename(file.id, name)
            await uow.commit()
        file.name = name
        return file

    async def delete(self, owner: User, file_id: str, *, client: str | None = None) -> StoredFile:
        """Remove the record and give back the quota, then the bytes; returns what was deleted."""
        return await self.remove(owner, file_id, action=FILE_DELETED, client=client, any_owner=False)

    async def remove(
        self, actor: User, file_id: str, *, action: str, client: str | None, any_owner: bool
    ) -> StoredFile:
        """The one way a file goes: its record, its owner's quota and the event ``action`` in one transaction,
        then its bytes. ``any_owner`` lets ``actor`` remove another's file (administration, which checks it)."""
        async with self._uow() as uow:
            file = await uow.files.get(file_id)
            file = file if any_owner and file is not None else _owned_by(actor, file)
            await uow.files.delete(file.id)
            await uow.users.release_bytes(file.owner_id, file.size)
            event = AuditEvent.of(
                action,
                self._clock(),
                actor=actor,
                subject=f"file:{file.id}",
                client=client,
                name=file.name,
                size=file.size,
                owner_id=file.owner_id,
            )
            await uow.audit.record(event)
            await uow.commit()
        await self._store.delete(file.storage_key)
        if file.thumbnail_key:
            await self._store.delete(file.thumbnail_key)
        return file


def _owned_by(owner: User, file: StoredFile | None) -> StoredFile:
    # Someone else's file answers exactly like a missing one: ids are not an oracle.
    if file is None or file.owner_id != owner.id:
        raise NotFound("No such file.")
    return file


def content_type_for(name: str, declared: str | None) -> str:
    """The client's type when it says something, else a guess from the name."""
    declared = (declared or "").split(";")[0].strip().lower()
    generic = ("application/octet-stream", "application/x-www-form-urlencoded")
    if declared not in generic and _MEDIA_TYPE.fullmatch(declared):
        return declared
    guessed, _ = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"
