"""Object storage (factor IV, VI): ``file://``, ``s3://`` or ``memory://``, one adapter.

The scheme of ``STORAGE_URL`` alone picks the backend; the object-store library
speaks all three, so the rest of Satchel never knows which one it has.

Local files are read in large ranged blocks (the fast path on a disk). An object store
is read in one streamed GET: a read that is cut or stalls (no byte for
``SATCHEL_STORAGE_TIMEOUT``) is resumed from the offset reached, with a ranged GET that
only answers if the object is still the same version (its ETag), so a download never
mixes two versions of an object.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError, PreconditionError
from obstore.store import LocalStore, MemoryStore, S3Store

from satchel.adapters.resilience import Guard
from satchel.adapters.staging import LocalStaging, MemoryStaging, S3Staging, part_size_for
from satchel.ports.storage import ObjectInfo, StoredObject, UploadStaging
from satchel.runtime.logging import get_logger

if TYPE_CHECKING:
    from obstore import GetOptions, GetResult
    from obstore.store import ObjectStore as Backend

    from satchel.settings import Settings

MIB = 1024 * 1024
PRESIGN_FOR = timedelta(minutes=5)
TRANSFER_BACKSTOP = 24 * 3600.0  # seconds: no upload takes a day, a hung store connection might
READ_BLOCK = 8 * MIB  # large range reads of local files: the fast path on a disk
STREAM_PIECE = MIB  # what a streamed read hands on at a time: few calls, and little held per download
READ_AHEAD = 2  # pieces read from the store while earlier ones are being sent: both connections keep moving
PUT_PIECE = MIB  # request-body chunks are gathered to this before they cross into the object-store library
S3_PART = 8 * MIB  # S3 multipart parts, at least: fewer requests than the library's 5 MiB
S3_PARTS_IN_FLIGHT = 32 * MIB  # bytes of parts uploading at once: what bounds an upload's memory
S3_MAX_PARTS_AT_ONCE = 4
RESUMES = 3  # attempts in a row, each bringing no byte, after which a cut read gives up
_PROBE_PREFIX = ".satchel-probe"

log = get_logger(__name__)


class _SourceFailed(Exception):
    """The bytes being stored stopped coming (the client left, a limit was reached): not the store's fault."""


class _Source:
    """An upload's chunks regrouped into pieces for the store, counting its size and keeping its own failure."""

    def __init__(self, chunks: AsyncIterator[bytes]) -> None:
        self.chunks = chunks
        self.size = 0
        self.failure: BaseException | None = None

    async def pieces(self) -> AsyncIterator[bytearray]:
        piece = bytearray()
        try:
            async for chunk in self.chunks:
                self.size += len(chunk)
                piece += chunk
                if len(piece) >= PUT_PIECE:
                    yield piece
                    piece = bytearray()  # a new one: the library may still hold the last
            if piece:
                yield piece
        except BaseException as exc:
            self.failure = exc
            raise


class ObjectChanged(Exception):
    """The object was replaced or removed while it was being read: the bytes read so far are of another version."""


class ObstoreStorage:
    """The ObjectStore port over any backend the object-store library supports.

    Short calls (probe, head, delete) run under a guard with a timeout; streamed
    transfers do not, since a large file may rightly take longer than any timeout.
    """

    name = "storage"

    def __init__(
        self,
        backend: Backend,
        *,
        description: str,
        staging: Callable[[Guard], UploadStaging],
        root: Path | None = None,
        timeout: float = 30.0,
        parts: tuple[int, int] = (5 * MIB, 4),
    ) -> None:
        self._backend = backend
        self.description = description
        self._root = root  # set for file:// storage: the web server can send such files itself
        self._part_size, self._parts_at_once = parts  # (bytes, how many at once) of a multipart upload
        self.guard = Guard("storage", timeout=timeout, outage_errors=(OSError, ObstoreError))
        self.staging = staging(self.guard)  # where resumable uploads wait until they are whole

    async def ping(self) -> None:
        async def list_one() -> None:
            stream = obstore.list(self._backend, prefix=_PROBE_PREFIX, chunk_size=1)
            async for _ in stream:
                break

        await self.guard.call(list_one)

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None, filename: str | None = None
    ) -> StoredObject:
        source = _Source(chunks)
        attributes = self._attributes(content_type, filename)

        async def put() -> None:
            try:
                # Parts in flight bound the memory an upload takes, whatever the file size.
                await obstore.put_async(
                    self._backend,
                    key,
                    source.pieces(),
                    attributes=attributes or None,
                    chunk_size=self._part_size,
                    max_concurrency=self._parts_at_once,
                )
            except Exception as exc:
                if source.failure is not None:
                    raise _SourceFailed() from exc  # the client or a limit, not the store: no breaker count
                raise

        try:
            # Under the guard for its breaker and bulkhead; the time limit is only a backstop, since a
            # large file may rightly take long and a stalled client is cut by SATCHEL_BODY_TIMEOUT.
            await self.guard.call(put, timeout=TRANSFER_BACKSTOP)
        except _SourceFailed:
            assert source.failure is not None
            raise source.failure from None
        return StoredObject(key=key, size=source.size)

    def _attributes(self, content_type: str | None, filename: str | None) -> dict[str, str]:
        """The headers S3 replays on presigned downloads; other stores keep none."""
        attributes: dict[str, str] = {}
        if isinstance(self._backend, S3Store):
            if content_type:
                attributes["Content-Type"] = content_type
            if filename:
                attributes["Content-Disposition"] = content_disposition(filename)
        return attributes

    async def get_stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if self._root is None:
            async for piece in _read_ahead(self._get_streamed(key, start, end), READ_AHEAD):
                yield piece
            return
        if end is None:
            meta = await self.head(key)
            if meta is None:
                raise FileNotFoundError(key)
            end = meta.size
        position = start
        while position < end:
            stop = min(position + READ_BLOCK, end)
            block = await obstore.get_range_async(self._backend, key, start=position, end=stop)
            yield bytes(block)
            position = stop

    async def _get_streamed(self, key: str, start: int, end: int | None) -> AsyncGenerator[bytes, None]:
        """One streamed GET, resumed from the offset reached (same version only) when a read fails."""
        position, etag, fruitless = start, None, 0
        while end is None or position < end:
            result = await self._open_read(key, position, end, etag)
            etag, end, opened_at = etag or result.meta["e_tag"], result.range[1], position
            try:
                async for piece in result.stream(min_chunk_size=STREAM_PIECE):
                    position += len(piece)
                    yield bytes(piece)
            except ObstoreError as exc:  # cut, or no byte within the read timeout
                fruitless = 0 if position > opened_at else fruitless + 1
                if etag is None or fruitless > RESUMES:
                    raise
                log.warning("storage.read_resumed", key=key, offset=position, error=type(exc).__name__)

    async def _open_read(self, key: str, position: int, end: int | None, etag: str | None) -> GetResult:
        options: GetOptions = {}
        if end is not None:
            options["range"] = (position, end)
        elif position:
            options["range"] = {"offset": position}
        if etag is not None:
            options["if_match"] = etag

        async def get() -> GetResult | None:
            try:
                return await obstore.get_async(self._backend, key, options=options)
            except (NotFoundError, PreconditionError):
                return None  # the store answered: no outage

        result = await self.guard.call(get)
        if result is None:
            if etag is not None:
                raise ObjectChanged(key)  # gone or replaced since the first byte was read
            raise FileNotFoundError(key)
        return result

    async def head(self, key: str) -> StoredObject | None:
        async def head() -> StoredObject | None:
            try:
                meta = await obstore.head_async(self._backend, key)
            except (NotFoundError, FileNotFoundError):
                return None
            return StoredObject(key=key, size=meta["size"])

        return await self.guard.call(head)

    async def delete(self, key: str) -> None:
        async def delete() -> None:
            with contextlib.suppress(NotFoundError, FileNotFoundError):
                await obstore.delete_async(self._backend, key)

        await self.guard.call(delete)

    async def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        async for page in obstore.list(self._backend, prefix=prefix, chunk_size=1000):
            for meta in page:
                yield ObjectInfo(key=meta["path"], size=meta["size"], modified=meta["last_modified"])

    async def sha256(self, key: str) -> str:
        path = self.local_path(key)
        if path is not None:  # hashed in a thread straight from the file, at memory speed

            def digest() -> str:
                with path.open("rb") as f:
                    return hashlib.file_digest(f, "sha256").hexdigest()

            return await asyncio.to_thread(digest)
        sha = hashlib.sha256()
        async for chunk in self.get_stream(key):
            sha.update(chunk)
        return sha.hexdigest()

    def local_path(self, key: str) -> Path | None:
        return None if self._root is None else self._root / key

    async def presigned_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        if not isinstance(self._backend, S3Store):
            return None
        url: str = await obstore.sign_async(self._backend, "GET", key, PRESIGN_FOR)
        return url


async def _read_ahead(pieces: AsyncGenerator[bytes, None], depth: int) -> AsyncIterator[bytes]:
    """``pieces``, read up to ``depth`` ahead of the consumer in a task of their own.

    Without it a download is a relay that waits on each side in turn: the store's connection
    stands still while a piece is sent on, and the client's while the next one is fetched.
    """
    queue: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue(depth)

    async def fill() -> None:
        try:
            async with contextlib.aclosing(pieces):
                async for piece in pieces:
                    await queue.put(piece)
        except Exception as exc:
            await queue.put(exc)
        else:
            await queue.put(None)

    filler = asyncio.create_task(fill())
    try:
        while (item := await queue.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        filler.cancel()  # the consumer stopped early (a client went away): stop reading too
        with contextlib.suppress(asyncio.CancelledError):
            await filler


def content_disposition(filename: str, disposition: str = "attachment") -> str:
    """RFC 6266: an ASCII fallback name plus the exact UTF-8 name, both safely quoted."""
    fallback = "".join(c if 32 <= ord(c) < 127 and c not in '"\\/%' else "_" for c in filename) or "download"
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def open_storage(settings: Settings) -> ObstoreStorage:
    """The object store named by ``STORAGE_URL``."""
    url = urlsplit(settings.storage_url)
    timeout = settings.storage_timeout
    if url.scheme == "memory":
        memory = MemoryStore()
        return ObstoreStorage(memory, description="memory", staging=lambda _: MemoryStaging(memory), timeout=timeout)
    if url.scheme == "file":
        # file:///abs/path, or file://./relative for development
        path = Path(unquote(url.netloc + url.path)).resolve()
        path.mkdir(parents=True, exist_ok=True)
        return ObstoreStorage(
            LocalStore(str(path)),
            description=f"file://{path}",
            staging=lambda guard: LocalStaging(path, guard),
            root=path,
            timeout=timeout,
        )
    return ObstoreStorage(
        _s3_backend(settings, url.netloc, url.path),
        description=f"s3://{url.netloc}{url.path}",
        timeout=timeout,
        staging=lambda guard: S3Staging(lambda: _s3_client(settings), url.netloc, url.path, guard),
        parts=s3_parts(settings.max_upload_bytes),
    )


def _s3_backend(settings: Settings, bucket: str, path: str) -> S3Store:
    """The S3 store: credentials and endpoint from the settings, its time limits from SATCHEL_STORAGE_TIMEOUT."""
    timeout = settings.storage_timeout
    config: dict[str, str] = {"region": settings.aws_region}
    if settings.aws_access_key_id:
        config["access_key_id"] = settings.aws_access_key_id
    if settings.aws_secret_access_key:
        config["secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    if settings.aws_session_token:
        config["session_token"] = settings.aws_session_token.get_secret_value()
    if settings.aws_endpoint_url:
        config["endpoint"] = settings.aws_endpoint_url
    # Each part carries its SHA-256 as an S3 checksum, which the store verifies and keeps; a signed payload would
    # hash every byte a second time for the signature (and a store given no checksum computes one of its own).
    config["checksum_algorithm"] = "SHA256"
    config["unsigned_payload"] = "true"
    return S3Store(
        bucket,
        prefix=path.strip("/") or None,
        config=config,  # type: ignore[arg-type]
        client_options={
            "allow_http": bool(settings.aws_endpoint_url),
            "connect_timeout": timedelta(seconds=5),
            # A connection is given up when nothing comes back for SATCHEL_STORAGE_TIMEOUT (so each part upload must
            # end within it), never for how long a transfer that keeps moving takes: a large file may take hours.
            "read_timeout": timedelta(seconds=timeout),
            "timeout": timedelta(seconds=TRANSFER_BACKSTOP),
        },
        # A store that is down is reported within about SATCHEL_STORAGE_TIMEOUT, not after minutes of retries.
        retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=timeout)},
    )


def s3_parts(max_object_bytes: int) -> tuple[int, int]:
    """Part size and parts in flight: the largest object allowed fits in S3's 10,000 parts, in bounded memory."""
    size = part_size_for(max_object_bytes, S3_PART)
    return size, max(1, min(S3_MAX_PARTS_AT_ONCE, S3_PARTS_IN_FLIGHT // size))


def _s3_client(settings: Settings) -> Any:
    """A client for the multipart calls the object-store library does not expose (resumable uploads)."""
    import boto3  # only S3 deployments pay for importing it
    from botocore.config import Config

    return boto3.client(
        "s3",
        region_name=settings.aws_region,
        endpoint_url=settings.aws_endpoint_url,
        aws_access_key_id=settings.aws_access_key_id,
        aws_secret_access_key=settings.aws_secret_access_key.get_secret_value()
        if settings.aws_secret_access_key
        else None,
        aws_session_token=settings.aws_session_token.get_secret_value() if settings.aws_session_token else None,
        config=Config(
            s3={"addressing_style": "path" if settings.aws_endpoint_url else "auto"},
            retries={"mode": "standard", "max_attempts": 3},  # part uploads are idempotent
            connect_timeout=5,
            read_timeout=settings.storage_timeout,
        ),
    )
