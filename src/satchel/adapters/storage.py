"""Object storage (factor IV, VI): ``file://``, ``s3://`` or ``memory://``, one adapter.

The scheme of ``STORAGE_URL`` alone picks the backend; the object-store library
speaks all three, so the rest of Satchel never knows which one it has.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote, urlsplit

import obstore
from obstore.exceptions import BaseError as ObstoreError
from obstore.exceptions import NotFoundError
from obstore.store import LocalStore, MemoryStore, S3Store

from satchel.adapters.resilience import Guard
from satchel.ports import ObjectInfo, StoredObject

if TYPE_CHECKING:
    from obstore.store import ObjectStore as Backend

    from satchel.settings import Settings

PRESIGN_FOR = timedelta(minutes=5)
READ_BLOCK = 8 * 1024 * 1024  # large range reads: the fast path for local and S3 alike
_PROBE_PREFIX = ".satchel-probe"


class ObstoreStorage:
    """The ObjectStore port over any backend the object-store library supports.

    Short calls (probe, head, delete) run under a guard with a timeout; streamed
    transfers do not, since a large file may rightly take longer than any timeout.
    """

    name = "storage"

    def __init__(self, backend: Backend, *, description: str, root: Path | None = None, timeout: float = 30.0) -> None:
        self._backend = backend
        self.description = description
        self._root = root  # set for file:// storage: the web server can send such files itself
        self._guard = Guard("storage", timeout=timeout, outage_errors=(OSError, ObstoreError))

    async def ping(self) -> None:
        async def list_one() -> None:
            stream = obstore.list(self._backend, prefix=_PROBE_PREFIX, chunk_size=1)
            async for _ in stream:
                break

        await self._guard.call(list_one)

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

        async def counted() -> AsyncIterator[bytes]:
            nonlocal size
            async for chunk in chunks:
                size += len(chunk)
                yield chunk

        # Parts in flight bound the memory an upload can take: 4 x 5 MiB, whatever the file size.
        await obstore.put_async(self._backend, key, counted(), attributes=attributes or None, max_concurrency=4)
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

        return await self._guard.call(head)

    async def delete(self, key: str) -> None:
        async def delete() -> None:
            with contextlib.suppress(NotFoundError, FileNotFoundError):
                await obstore.delete_async(self._backend, key)

        await self._guard.call(delete)

    async def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        async for page in obstore.list(self._backend, prefix=prefix, chunk_size=1000):
            for meta in page:
                yield ObjectInfo(key=meta["path"], size=meta["size"], modified=meta["last_modified"])

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
    backend: Backend
    if url.scheme == "memory":
        backend = MemoryStore()
        description = "memory"
    elif url.scheme == "file":
        # file:///abs/path, or file://./relative for development
        path = Path(unquote(url.netloc + url.path)).resolve()
        path.mkdir(parents=True, exist_ok=True)
        backend = LocalStore(str(path))
        description = f"file://{path}"
        return ObstoreStorage(backend, description=description, root=path)
    else:
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
            client_options={"allow_http": bool(settings.aws_endpoint_url)},
        )
        description = f"s3://{url.netloc}{url.path}"
    return ObstoreStorage(backend, description=description)
