"""Resumable uploads: create one, append bytes from any process, finish it into an ordinary file.

The upload's offset lives in the database and its bytes in the object store's staging, so
the request that continues an upload may reach any web process, and a process that dies
mid-request loses at most the bytes it had not yet made durable. When the last byte is in,
the upload joins the ordinary upload path (``Files.record``: quota, checksum, jobs) in the
same transaction that marks it finished.

An upload may also come in through an upload link (``Through``, see ``services.request_uploads``):
then only requests through that link reach it, and the link takes the file in that same transaction.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from satchel.domain.accounts import User
from satchel.domain.clock import utcnow
from satchel.domain.errors import DomainError
from satchel.domain.files import StoredFile
from satchel.domain.uploads import (
    Checksum,
    ChecksumMismatch,
    OffsetMismatch,
    Upload,
    UploadBusy,
    UploadNotFound,
    UploadOverrun,
)
from satchel.ports.persistence import UnitOfWork, UnitOfWorkFactory, UploadLocks
from satchel.ports.storage import StagedPoint, UploadStaging
from satchel.services.files import Files, content_type_for, storage_key

log = logging.getLogger("satchel.uploads")


@dataclass(frozen=True)
class Body:
    """The bytes of one request, as they arrive: ``size`` when the client declared it, ``checksum`` if it sent one."""

    chunks: AsyncIterator[bytes]
    size: int | None = None
    checksum: Checksum | None = None


@dataclass(frozen=True)
class Through:
    """The upload link an upload comes in by: only requests through it reach the upload, and ``also`` joins the
    transaction that records the finished file (the link's atomic take of it, and its mail to the owner)."""

    request_id: int
    also: Callable[[UnitOfWork, StoredFile], Awaitable[None]]


@dataclass(frozen=True)
class UploadState:
    """What a client is told about an upload: how far it got, until when, and the file it became."""

    upload: Upload
    file: StoredFile | None = None


class Uploads:
    def __init__(
        self,
        uow: UnitOfWorkFactory,
        staging: UploadStaging,
        locks: UploadLocks,
        files: Files,
        *,
        max_upload_bytes: int,
        expire_after: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._uow = uow
        self._staging = staging
        self._locks = locks
        self._files = files
        self._max_upload = max_upload_bytes
        self._expire_after = expire_after
        self._clock = clock
        self._digests = RunningDigests()

    async def create(
        self, owner: User, *, length: int, name: str, content_type: str | None, through: Through | None = None
    ) -> Upload:
        """Open a resumable upload of ``length`` bytes into ``owner``'s account (through an upload link, with
        ``through``); refused at once if it could never fit."""
        name = await self._files.admit(owner, name, length)
        now = self._clock()
        upload_id = secrets.token_hex(16)
        key = storage_key(now, upload_id)  # named after the upload, so its staged bytes can be traced to it
        content_type = content_type_for(name, content_type)
        staging = await self._staging.begin(upload_id, key, length=length, content_type=content_type, filename=name)
        upload = Upload(
            id=upload_id,
            owner_id=owner.id,
            length=length,
            offset=0,
            name=name,
            content_type=content_type,
            storage_key=key,
            staging=staging,
            created_at=now,
            expires_at=now + self._expire_after,
            request_id=through.request_id if through else None,
        )
        try:
            async with self._uow() as uow:
                await uow.uploads.add(upload)
                await uow.commit()
        except BaseException:
            await self._staging.discard(upload_id, staging)
            raise
        log.info("upload.created", extra={"upload_id": upload_id, "length": length})
        return upload

    async def state(
        self, owner: User, upload_id: str, *, client: str | None = None, through: Through | None = None
    ) -> UploadState:
        """Where the upload stands. An upload whose bytes are all in but that is not yet a file is finished now:
        the request that received its last byte may have died before it could do that."""
        async with self._uow() as uow:
            upload = await self._reached(uow, owner, upload_id, through)
        upload.ensure_alive(self._clock())
        if upload.received and not upload.finished:
            async with self._locks.hold(upload.id):
                return await self._finish(owner, upload.id, client, through)
        return UploadState(upload, await self._file_of(upload))

    async def append(
        self,
        owner: User,
        upload_id: str,
        *,
        offset: int,
        body: Body,
        client: str | None = None,
        through: Through | None = None,
    ) -> UploadState:
        """Store the bytes of one request at ``offset``; the new offset is kept as soon as bytes are durable.

        With a checksum, the request's bytes count only if they match it, all or nothing. Without one,
        whatever arrived before a client went away is kept, so it resumes from there.
        """
        owner.ensure_active()
        async with self._locks.hold(upload_id):
            async with self._uow() as uow:
                upload = await self._reached(uow, owner, upload_id, through)
            upload.ensure_alive(self._clock())
            room = upload.room_at(offset, body.size)
            checksum = body.checksum
            chunks = _limited(body.chunks, room)
            if checksum is not None:
                chunks = _verified(chunks, checksum)
            digest = self._digests.take(upload.id, offset)
            if digest is not None:
                chunks = digest.fed(chunks)
            points = self._staging.write(upload.id, upload.staging, offset, chunks, keep_partial=checksum is None)
            last = None
            async for point in points:
                if checksum is None:
                    await self._advance(upload, point)  # durable: a retry resumes after these bytes
                last = point
            if checksum is not None and last is not None:
                await self._advance(upload, last)  # verified: all of the request's bytes count at once
            if digest is not None and digest.offset == upload.offset:
                self._digests.keep(upload.id, digest)
            if upload.received:
                return await self._finish(owner, upload.id, client, through)
            return UploadState(upload)

    async def terminate(self, owner: User, upload_id: str, *, through: Through | None = None) -> None:
        """Abandon an upload: its staged bytes go at once. A finished upload's file stays."""
        async with self._locks.hold(upload_id):
            async with self._uow() as uow:
                upload = await self._reached(uow, owner, upload_id, through)
            await self._remove(upload)

    async def purge_expired(self, now: datetime, *, dry_run: bool = False, batch: int = 200) -> int:
        """Remove abandoned uploads (``Upload.abandoned``: past their expiry, or their link will not take them)
        with their staged bytes, and finished ones' records past their expiry. Returns how many unfinished
        ones there were."""
        unfinished, after = 0, ""
        while True:
            async with self._uow() as uow:
                abandoned = await uow.uploads.abandoned(now, limit=batch, after_id=after)
            if not abandoned:
                return unfinished
            for upload in abandoned:
                unfinished += not upload.finished
                if not dry_run:
                    await self.remove_if_abandoned(upload.id, now)
            after = abandoned[-1].id

    async def remove_if_abandoned(self, upload_id: str, now: datetime) -> None:
        """Remove the upload with its staged bytes if it is abandoned, unless a request is writing it right now
        (that request finds out, or the next sweep)."""
        try:
            async with self._locks.hold(upload_id):
                async with self._uow() as uow:
                    upload = await uow.uploads.get(upload_id)
                    link = await uow.requests.get(upload.request_id) if upload and upload.request_id else None
                if upload is not None and upload.abandoned(now, link):  # not revived since it was listed
                    await self._remove(upload)
        except UploadBusy:
            return  # being written right now: not abandoned after all

    async def _remove(self, upload: Upload) -> None:
        if not upload.finished:
            await self._staging.discard(upload.id, upload.staging)
            await self._files.discard(upload.storage_key)  # finished into place but never recorded
        async with self._uow() as uow:
            await uow.uploads.delete(upload.id)
            await uow.commit()
        log.info("upload.removed", extra={"upload_id": upload.id, "finished": upload.finished})

    async def _advance(self, upload: Upload, point: StagedPoint) -> None:
        expires = self._clock() + self._expire_after  # an upload in use never expires
        async with self._uow() as uow:
            if not await uow.uploads.advance(upload.id, from_offset=upload.offset, point=point, expires_at=expires):
                raise OffsetMismatch(upload.offset)  # moved under us; the lock should make this impossible
            await uow.commit()
        upload.offset, upload.staging, upload.expires_at = point.offset, point.staging, expires

    async def _finish(self, owner: User, upload_id: str, client: str | None, through: Through | None) -> UploadState:
        """Make the staged bytes the file's object and record the file and the upload's end in one transaction."""
        async with self._uow() as uow:
            upload = await self._reached(uow, owner, upload_id, through)
        if upload.finished:
            return UploadState(upload, await self._file_of(upload))
        await self._staging.finish(upload.id, upload.staging, upload.storage_key)
        digest = self._digests.take(upload.id, upload.length)
        # Hashed on the way in when this process received every request; else read back once.
        sha256 = digest.hexdigest() if digest else await self._files.checksum(upload.storage_key)

        async def mark(uow: UnitOfWork, file: StoredFile) -> None:
            await uow.uploads.mark_finished(upload.id, file.id)
            if through is not None:
                await through.also(uow, file)  # the link takes the file, or refuses it and none of this is kept

        try:
            file = await self._files.record(
                owner,
                upload.name,
                upload.storage_key,
                size=upload.length,
                sha256=sha256,
                content_type=upload.content_type or "application/octet-stream",
                also=mark,
                keep_on_outage=True,
                client=client,
            )
        except DomainError:
            # Refused for good (quota or the link's room taken meanwhile, account disabled): it cannot become a file.
            async with self._uow() as uow:
                await uow.uploads.delete(upload.id)
                await uow.commit()
            raise
        upload.file_id = file.id
        log.info("upload.finished", extra={"upload_id": upload.id, "file_id": file.id, "size": file.size})
        return UploadState(upload, file)

    async def _file_of(self, upload: Upload) -> StoredFile | None:
        if upload.file_id is None:
            return None
        async with self._uow() as uow:
            return await uow.files.get(upload.file_id)

    @staticmethod
    async def _reached(uow: UnitOfWork, owner: User, upload_id: str, through: Through | None) -> Upload:
        upload = await uow.uploads.get(upload_id)
        if upload is None:
            raise UploadNotFound()
        upload.ensure_reached(owner.id, through.request_id if through else None)
        return upload


HASH_BLOCK = 1024 * 1024


class RunningDigest:
    """The SHA-256 of an upload's first ``offset`` bytes, as this process saw them arrive."""

    def __init__(self, offset: int = 0) -> None:
        self.offset = offset
        self._sha = hashlib.sha256()

    async def fed(self, chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
        """The chunks, passed on at once; hashed a block at a time in a thread, beside the receiving loop."""
        block, hashing = bytearray(), None
        try:
            async for chunk in chunks:
                yield chunk
                block += chunk
                if len(block) >= HASH_BLOCK:
                    if hashing is not None:
                        await hashing  # in order: one block at a time
                    hashing = asyncio.ensure_future(asyncio.to_thread(self._sha.update, block))
                    self.offset += len(block)
                    block = bytearray()
        finally:
            if hashing is not None:
                await hashing
        self._sha.update(block)
        self.offset += len(block)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()


class RunningDigests:
    """A cache, never a source of truth: the running SHA-256 of uploads this process is receiving.

    When consecutive requests of an upload reach this process, their bytes are hashed as they arrive and
    the finished file needs no second read. A request that lands elsewhere, fails, or follows a restart
    finds no digest at its offset, and the finished file is hashed from storage instead.
    """

    LIMIT = 1024  # uploads at once; the least recently fed ones are forgotten

    def __init__(self) -> None:
        self._digests: OrderedDict[str, RunningDigest] = OrderedDict()

    def take(self, upload_id: str, offset: int) -> RunningDigest | None:
        """The digest that has seen exactly the first ``offset`` bytes (a new one at 0), taken out of the cache."""
        digest = self._digests.pop(upload_id, None)
        if digest is not None and digest.offset == offset:
            return digest
        return RunningDigest() if offset == 0 else None

    def keep(self, upload_id: str, digest: RunningDigest) -> None:
        self._digests[upload_id] = digest
        while len(self._digests) > self.LIMIT:
            self._digests.popitem(last=False)


async def _limited(chunks: AsyncIterator[bytes], room: int) -> AsyncIterator[bytes]:
    """The request's bytes, refusing any beyond the upload's length before they are stored."""
    seen = 0
    async for chunk in chunks:
        seen += len(chunk)
        if seen > room:
            raise UploadOverrun(f"The upload has {room} bytes left; this request carries more.")
        yield chunk


async def _verified(chunks: AsyncIterator[bytes], checksum: Checksum) -> AsyncIterator[bytes]:
    """The request's bytes; at their end, a mismatch with the client's checksum fails the whole request."""
    digest = hashlib.new(checksum.algorithm)
    async for chunk in chunks:
        digest.update(chunk)
        yield chunk
    if not checksum.matches(digest.digest()):
        raise ChecksumMismatch()
