"""Staged bytes of resumable uploads, per backend: a sparse file on disk, S3 multipart parts, or memory.

Each backend keeps everything a later request needs in the ``staging`` record that the
upload's row carries, so the next request may land on any process. Bytes count as
received only once they are durable: written to the file, or uploaded as an S3 part
(an S3 part must be at least 5 MiB, so a shorter remainder is kept as a "tail" object
and prepended to the next request's bytes).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import obstore
from obstore.store import MemoryStore

from satchel.adapters.resilience import Guard
from satchel.domain.clock import utcnow
from satchel.ports.storage import Leftover, StagedPoint

T = TypeVar("T")
UPLOADS = "uploads"
FILE_POINT_EVERY = 16 * 1024 * 1024  # how often a file upload's offset is committed: a kill loses at most this
WRITE_BLOCK = 1024 * 1024
MIB = 1024 * 1024
S3_MIN_PART = 8 * MIB  # above S3's 5 MiB minimum
S3_MAX_PARTS = 10_000


def part_size_for(length: int, smallest: int = S3_MIN_PART) -> int:
    """The part size, in whole MiB and at least ``smallest``, that fits ``length`` bytes in S3's 10,000 parts."""
    return max(smallest, -(-length // S3_MAX_PARTS // MIB) * MIB)


def _mtime(stat: os.stat_result) -> datetime:
    return datetime.fromtimestamp(stat.st_mtime, UTC)


class LocalStaging:
    """``file://``: one sparse file per upload under ``uploads/``, written at the offsets the requests carry;
    finishing is a rename into place, so a finished upload costs no copy."""

    def __init__(self, root: Path, guard: Guard) -> None:
        self._root = root
        self._dir = root / UPLOADS
        self._guard = guard  # a full or failing disk is an outage of storage: 503, counted by its breaker

    async def _io(self, work: Callable[..., T], *args: Any) -> T:
        call: Callable[[], Awaitable[T]] = functools.partial(asyncio.to_thread, work, *args)
        return await self._guard.call(call)

    def _path(self, upload_id: str) -> Path:
        return self._dir / upload_id

    async def begin(
        self, upload_id: str, key: str, *, length: int, content_type: str | None, filename: str
    ) -> dict[str, Any]:
        def create() -> None:
            self._dir.mkdir(parents=True, exist_ok=True)
            self._path(upload_id).touch(exist_ok=False)

        await self._io(create)
        return {}

    async def write(
        self, upload_id: str, staging: dict[str, Any], offset: int, chunks: AsyncIterator[bytes], *, keep_partial: bool
    ) -> AsyncIterator[StagedPoint]:
        fd = await self._io(os.open, self._path(upload_id), os.O_WRONLY)
        writer = _BlockWriter(fd, offset, self._io)
        durable, block, source = offset, bytearray(), aiter(chunks)
        try:
            while True:
                try:
                    chunk = await anext(source)
                except StopAsyncIteration:
                    break
                except Exception:  # the client, not the disk: keep what reached us, and it resumes after it
                    if keep_partial:
                        await writer.write(block)
                        if await writer.drain() > durable:
                            yield StagedPoint(writer.written, staging)
                    raise
                block += chunk
                if len(block) >= WRITE_BLOCK:
                    await writer.write(block)
                    block = bytearray()
                    if writer.written - durable >= FILE_POINT_EVERY:
                        durable = writer.written
                        yield StagedPoint(durable, staging)
            await writer.write(block)
            if await writer.drain() > durable:
                yield StagedPoint(writer.written, staging)
        finally:
            await writer.drain_quietly()
            os.close(fd)

    async def finish(self, upload_id: str, staging: dict[str, Any], key: str) -> None:
        source, target = self._path(upload_id), self._root / key

        def move() -> None:
            if not source.exists() and target.exists():
                return  # finished by an earlier attempt that did not get to record it
            target.parent.mkdir(parents=True, exist_ok=True)
            source.replace(target)  # atomic on one filesystem: the object appears whole or not at all

        await self._io(move)

    async def discard(self, upload_id: str, staging: dict[str, Any]) -> None:
        await self._io(functools.partial(self._path(upload_id).unlink, missing_ok=True))

    async def leftovers(self) -> AsyncIterator[Leftover]:
        """Staged uploads, and the half-written temporary files (``name#n``) of writes that were killed."""

        def scan() -> list[Leftover]:
            found = []
            for folder, _, names in os.walk(self._root):
                for name in names:
                    path = Path(folder) / name
                    staged = path.parent == self._dir
                    if not staged and "#" not in name:
                        continue
                    with contextlib.suppress(FileNotFoundError):
                        stat = path.stat()
                        ref = path.relative_to(self._root).as_posix()
                        found.append(Leftover(ref, name if staged else None, stat.st_size, _mtime(stat)))
            return found

        for leftover in await self._io(scan):
            yield leftover

    async def remove(self, ref: str) -> None:
        path = (self._root / ref).resolve()
        if self._root.resolve() not in path.parents:
            raise ValueError(f"{ref!r} is outside the storage folder")
        await self._io(functools.partial(path.unlink, missing_ok=True))


class _BlockWriter:
    """Writes each block in a thread while the next one arrives: the network and the disk work at once."""

    def __init__(self, fd: int, position: int, io: Callable[..., Awaitable[int]]) -> None:
        self._fd = fd
        self._io = io
        self.written = position  # every byte before this is in the file
        self._pending: asyncio.Future[int] | None = None

    async def write(self, block: bytearray) -> None:
        await self.drain()
        if block:
            self._pending = asyncio.ensure_future(self._io(_pwrite_all, self._fd, block, self.written))

    async def drain(self) -> int:
        if self._pending is not None:
            pending, self._pending = self._pending, None
            self.written = await pending
        return self.written

    async def drain_quietly(self) -> None:
        """Let a write in flight end before the file is closed under it, whatever went wrong."""
        with contextlib.suppress(Exception):
            await self.drain()


def _pwrite_all(fd: int, block: bytearray, position: int) -> int:
    view = memoryview(block)
    while view:
        written = os.pwrite(fd, view, position)
        position += written
        view = view[written:]
    return position


class MemoryStaging:
    """``memory://`` (tests and trials): staged bytes in this process, finished into the memory store."""

    def __init__(self, backend: MemoryStore) -> None:
        self._backend = backend
        self._staged: dict[str, tuple[bytearray, datetime]] = {}

    async def begin(
        self, upload_id: str, key: str, *, length: int, content_type: str | None, filename: str
    ) -> dict[str, Any]:
        self._staged[upload_id] = (bytearray(), utcnow())
        return {}

    async def write(
        self, upload_id: str, staging: dict[str, Any], offset: int, chunks: AsyncIterator[bytes], *, keep_partial: bool
    ) -> AsyncIterator[StagedPoint]:
        data = self._staged[upload_id][0]
        received = bytearray()
        try:
            async for chunk in chunks:
                received += chunk
        except Exception:
            if keep_partial and received:
                data[offset:] = received
                yield StagedPoint(offset + len(received), staging)
            raise
        data[offset:] = received
        yield StagedPoint(offset + len(received), staging)

    async def finish(self, upload_id: str, staging: dict[str, Any], key: str) -> None:
        staged = self._staged.pop(upload_id, None)
        if staged is not None:
            await obstore.put_async(self._backend, key, bytes(staged[0]))

    async def discard(self, upload_id: str, staging: dict[str, Any]) -> None:
        self._staged.pop(upload_id, None)

    async def leftovers(self) -> AsyncIterator[Leftover]:
        for upload_id, (data, since) in list(self._staged.items()):
            yield Leftover(f"{UPLOADS}/{upload_id}", upload_id, len(data), since)

    async def remove(self, ref: str) -> None:
        self._staged.pop(ref.removeprefix(f"{UPLOADS}/"), None)


class S3Staging:
    """``s3://``: an S3 multipart upload per resumable upload, created for the final key.

    ``staging`` holds the multipart id, the part size, the uploaded parts' ETags and sizes,
    and the tail object with the bytes that do not fill a part yet. A tail's key is new each
    time, so a request that fails (or whose checksum is wrong) never overwrites the tail that
    the committed offset relies on. Calls go through the storage guard.
    """

    def __init__(self, client: Callable[[], Any], bucket: str, prefix: str, guard: Guard) -> None:
        self._make_client = client
        self._bucket = bucket
        self._prefix = f"{prefix.strip('/')}/" if prefix.strip("/") else ""
        self._guard = guard

    @functools.cached_property
    def _client(self) -> Any:
        """A boto3 S3 client, made on first use (thread-safe; called from worker threads)."""
        return self._make_client()

    async def _call(self, method: Callable[..., T], **kwargs: Any) -> T:
        def run() -> T:
            return _outages_as_oserror(method, {"Bucket": self._bucket, **kwargs})

        return await self._guard.call(lambda: asyncio.to_thread(run))

    def _key(self, key: str) -> str:
        return self._prefix + key

    async def begin(
        self, upload_id: str, key: str, *, length: int, content_type: str | None, filename: str
    ) -> dict[str, Any]:
        from satchel.adapters.storage import content_disposition

        part_size = part_size_for(length)
        created = await self._call(
            self._client.create_multipart_upload,
            Key=self._key(key),
            ContentType=content_type or "application/octet-stream",
            ContentDisposition=content_disposition(filename),
        )
        return {
            "multipart": created["UploadId"],
            "key": key,
            "length": length,
            "part_size": part_size,
            "parts": [],
            "tail": None,
        }

    async def write(
        self, upload_id: str, staging: dict[str, Any], offset: int, chunks: AsyncIterator[bytes], *, keep_partial: bool
    ) -> AsyncIterator[StagedPoint]:
        parts: list[list[Any]] = [list(p) for p in staging["parts"]]
        part_size: int = staging["part_size"]
        buffer = bytearray()
        if staging["tail"]:
            tail = await self._call(self._client.get_object, Key=self._key(staging["tail"]["key"]))
            buffer += await asyncio.to_thread(tail["Body"].read)
        try:
            async for chunk in chunks:
                buffer += chunk
                while len(buffer) >= part_size:
                    await self._upload_part(staging, parts, bytes(buffer[:part_size]))
                    del buffer[:part_size]
                    yield StagedPoint(_size(parts), {**staging, "parts": parts, "tail": None})
        except Exception:
            if keep_partial and buffer:
                yield await self._keep_tail(upload_id, staging, parts, bytes(buffer))
            raise
        if buffer:
            yield await self._keep_tail(upload_id, staging, parts, bytes(buffer))

    async def _upload_part(self, staging: dict[str, Any], parts: list[list[Any]], body: bytes) -> None:
        number = len(parts) + 1
        uploaded = await self._call(
            self._client.upload_part,
            Key=self._key(staging["key"]),
            UploadId=staging["multipart"],
            PartNumber=number,
            Body=body,
        )
        parts.append([uploaded["ETag"], len(body)])

    async def _keep_tail(
        self, upload_id: str, staging: dict[str, Any], parts: list[list[Any]], data: bytes
    ) -> StagedPoint:
        """Bytes short of a part: the last part if they end the upload, else a tail object of their own."""
        if _size(parts) + len(data) == staging["length"]:
            await self._upload_part(staging, parts, data)
            return StagedPoint(_size(parts), {**staging, "parts": parts, "tail": None})
        key = f"{UPLOADS}/{upload_id}/tail-{_size(parts)}-{secrets.token_hex(4)}"
        await self._call(self._client.put_object, Key=self._key(key), Body=data)
        tail = {"key": key, "size": len(data)}
        return StagedPoint(_size(parts) + len(data), {**staging, "parts": parts, "tail": tail})

    async def finish(self, upload_id: str, staging: dict[str, Any], key: str) -> None:
        parts = [{"ETag": etag, "PartNumber": n} for n, (etag, _) in enumerate(staging["parts"], start=1)]
        try:
            await self._call(
                self._client.complete_multipart_upload,
                Key=self._key(key),
                UploadId=staging["multipart"],
                MultipartUpload={"Parts": parts},
            )
        except self._client.exceptions.NoSuchUpload:
            # Completed by an earlier attempt that did not get to record it: the object must be there.
            await self._call(self._client.head_object, Key=self._key(key))
        await self._delete_tails(upload_id)

    async def discard(self, upload_id: str, staging: dict[str, Any]) -> None:
        with contextlib.suppress(self._client.exceptions.NoSuchUpload):
            await self._call(
                self._client.abort_multipart_upload, Key=self._key(staging["key"]), UploadId=staging["multipart"]
            )
        await self._delete_tails(upload_id)

    async def _delete_tails(self, upload_id: str) -> None:
        listed = await self._call(self._client.list_objects_v2, Prefix=self._key(f"{UPLOADS}/{upload_id}/"))
        for item in listed.get("Contents", []):
            await self._call(self._client.delete_object, Key=item["Key"])

    async def leftovers(self) -> AsyncIterator[Leftover]:
        """Multipart uploads not completed (resumable ones, and writes that were killed) and tail objects."""
        marker: dict[str, str] = {}
        while True:
            page = await self._call(self._client.list_multipart_uploads, Prefix=self._prefix, **marker)
            for item in page.get("Uploads", []):
                key = item["Key"].removeprefix(self._prefix)
                # A resumable upload's object is named after it: files/…/<upload id>.
                yield Leftover(f"multipart:{item['UploadId']}:{key}", key.rsplit("/", 1)[-1], 0, item["Initiated"])
            if not page.get("IsTruncated"):
                break
            marker = {"KeyMarker": page["NextKeyMarker"], "UploadIdMarker": page["NextUploadIdMarker"]}
        pages = self._client.get_paginator("list_objects_v2").paginate(
            Bucket=self._bucket, Prefix=self._key(f"{UPLOADS}/")
        )
        for page in await self._guard.call(functools.partial(asyncio.to_thread, list, pages)):
            for item in page.get("Contents", []):
                key = item["Key"].removeprefix(self._prefix)
                yield Leftover(key, key.split("/")[1], item["Size"], item["LastModified"])

    async def remove(self, ref: str) -> None:
        if ref.startswith("multipart:"):
            _, multipart, key = ref.split(":", 2)
            with contextlib.suppress(self._client.exceptions.NoSuchUpload):
                await self._call(self._client.abort_multipart_upload, Key=self._key(key), UploadId=multipart)
        else:
            await self._call(self._client.delete_object, Key=self._key(ref))


def _outages_as_oserror(method: Callable[..., T], kwargs: dict[str, Any]) -> T:
    """Run an S3 call, telling the guard an outage (no connection, a timeout, a 5xx) as ConnectionError."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return method(**kwargs)
    except BotoCoreError as exc:  # no answer at all: refused, timed out, dropped
        raise ConnectionError(type(exc).__name__) from exc
    except ClientError as exc:
        if exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 500) >= 500:
            raise ConnectionError(exc.response.get("Error", {}).get("Code", "S3 error")) from exc
        raise  # the store answered: the request was the problem


def _size(parts: list[list[Any]]) -> int:
    return sum(size for _, size in parts)
