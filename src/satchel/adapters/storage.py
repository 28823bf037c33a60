"""Object storage (factor IV, VI): ``file://``, ``s3://`` or ``memory://``, one adapter.

The scheme of ``STORAGE_URL`` alone picks the backend; the object-store library
speaks all three, so the rest of Satchel never knows which one it has.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, unquote, urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, MemoryStore, S3Store

from satchel.adapters.resilience import Guard
from satchel.adapters.staging import LocalStaging, MemoryStaging, S3Staging
from satchel.ports import ObjectInfo, StoredObject, UploadStaging

if TYPE_CHECKING:
    from obstore.store import ObjectStore as Backend

    from satchel.settings import Settings

PRESIGN_FOR = timedelta(minutes=5)
TRANSFER_BACKSTOP = 24 * 3600.0  # seconds: no upload takes a day, a hung store connection might
READ_BLOCK = 8 * 1024 * 1024  # large range reads: the fast path for local and S3 alike
_PROBE_PREFIX = ".satchel-probe"


class _SourceFailed(Exception):
    """The bytes being stored stopped coming (the client left, a limit was reached): not the store's fault."""


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
    ) -> None:
        self._backend = backend
        self.description = description
        self._root = root  # set for file:// storage: the web server can send such files itself
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
        attributes: dict[str, str] = {}
        if isinstance(self._backend, S3Store):  # headers S3 replays on presigned downloads
            if content_type:
                attributes["Content-Type"] = content_type
            if filename:
                attributes["Content-Disposition"] = content_disposition(filename)
        size = 0
        failure: BaseException | None = None

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size, failure
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    yield chunk
            except BaseException as exc:
                failure = exc
                raise

        async def put() -> None:
            try:
                # Parts in flight bound the memory an upload can take: 4 x 5 MiB, whatever the file size.
                await obstore.put_async(self._backend, key, counted(), attributes=attributes or None, max_concurrency=4)
            except Exception as exc:
                if failure is not None:
                    raise _SourceFailed() from exc  # the client or a limit, not the store: no breaker count
                raise

        try:
            # Under the guard for its breaker and bulkhead; the time limit is only a backstop, since a
            # large file may rightly take long and a stalled client is cut by SATCHEL_BODY_TIMEOUT.
            await self.guard.call(put, timeout=TRANSFER_BACKSTOP)
        except _SourceFailed:
            assert failure is not None
            raise failure from None
        return StoredObject(key=key, size=size)

    async def get_stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
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
            LocalStore(str(path)), description=f"file://{path}", staging=lambda guard: LocalStaging(path, guard),
            root=path,
            timeout=timeout,
        )  # fmt: skip
    config: dict[str, str] = {"region": settings.aws_region}
    if settings.aws_access_key_id:
        config["access_key_id"] = settings.aws_access_key_id
    if settings.aws_secret_access_key:
        config["secret_access_key"] = settings.aws_secret_access_key.get_secret_value()
    if settings.aws_session_token:
        config["session_token"] = settings.aws_session_token.get_secret_value()
    if settings.aws_endpoint_url:
        config["endpoint"] = settings.aws_endpoint_url
    backend = S3Store(
        url.netloc,
        prefix=url.path.strip("/") or None,
        config=config,  # type: ignore[arg-type]
        client_options={"allow_http": bool(settings.aws_endpoint_url), "connect_timeout": timedelta(seconds=5)},
        # A store that is down is reported within about SATCHEL_STORAGE_TIMEOUT, not after minutes of retries.
        retry_config={"max_retries": 3, "retry_timeout": timedelta(seconds=timeout)},
    )
    return ObstoreStorage(
        backend, description=f"s3://{url.netloc}{url.path}", timeout=timeout,
        staging=lambda guard: S3Staging(lambda: _s3_client(settings), url.netloc, url.path, guard),
    )  # fmt: skip


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
