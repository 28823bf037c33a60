"""Where file bytes live: whole objects, and the staged bytes of resumable uploads."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from satchel.ports.health import Probe


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int


@dataclass(frozen=True)
class ObjectInfo:
    key: str
    size: int
    modified: datetime


class ObjectStore(Probe, Protocol):
    """Where file bytes live: a local folder, S3, or memory."""

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None, filename: str | None = None
    ) -> StoredObject:
        """Store the chunks under ``key`` without holding them all in memory."""

    def get_stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        """Yield the object's bytes ``[start, end)`` in large chunks."""

    async def head(self, key: str) -> StoredObject | None:
        """The object's size, or None when there is no such object."""

    async def delete(self, key: str) -> None:
        """Remove the object; removing a missing object is not an error."""

    def list_objects(self, prefix: str) -> AsyncIterator[ObjectInfo]:
        """Every object under ``prefix``, in pages, without loading the whole listing."""

    def local_path(self, key: str) -> Path | None:
        """The object's path when it is a local file the web server can send itself."""

    async def presigned_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        """A short-lived direct download URL, when the backend can make one."""

    async def sha256(self, key: str) -> str:
        """The SHA-256 of the stored object, read back from storage."""


@dataclass(frozen=True)
class StagedPoint:
    """Bytes of a resumable upload are durable up to ``offset``; ``staging`` is how the store finds them again."""

    offset: int
    staging: dict[str, Any]


@dataclass(frozen=True)
class Leftover:
    """Bytes in storage that are not (yet) an object: a staged upload, or a write that was interrupted."""

    ref: str
    upload_id: str | None  # the resumable upload it belongs to, when it is one
    size: int
    modified: datetime


class UploadStaging(Protocol):
    """Where the bytes of resumable uploads wait until they are whole: parts on S3, a sparse file on disk.

    Everything a later request needs is in the returned ``staging`` record, which the caller keeps
    with the upload in the database: any process can continue an upload another one started.
    """

    async def begin(
        self, upload_id: str, key: str, *, length: int, content_type: str | None, filename: str
    ) -> dict[str, Any]:
        """Get ready to receive ``length`` bytes that will become the object ``key``."""

    def write(
        self, upload_id: str, staging: dict[str, Any], offset: int, chunks: AsyncIterator[bytes], *, keep_partial: bool
    ) -> AsyncIterator[StagedPoint]:
        """Store ``chunks`` from ``offset`` on, yielding each point up to which the bytes are durable.

        If ``chunks`` fails, with ``keep_partial`` the bytes received so far are made durable and
        yielded before the error is raised again; without it they are abandoned.
        """

    async def finish(self, upload_id: str, staging: dict[str, Any], key: str) -> None:
        """Make the staged bytes the object ``key``. Finishing an upload that is already finished does nothing."""

    async def discard(self, upload_id: str, staging: dict[str, Any]) -> None:
        """Remove every staged byte of the upload."""

    def leftovers(self) -> AsyncIterator[Leftover]:
        """Staged uploads and interrupted writes still taking space, for ``storage verify``."""

    async def remove(self, ref: str) -> None:
        """Remove one leftover."""
