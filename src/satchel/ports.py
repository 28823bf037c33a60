"""The small protocols through which services reach the outside world.

Services depend on these, never on an adapter; ``bootstrap`` decides which
adapter stands behind each one, from the URL in the settings (factor IV).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, get_args

from satchel.domain.accounts import ApiToken, User
from satchel.domain.files import StoredFile
from satchel.domain.jobs import Job
from satchel.domain.sharing import Share
from satchel.domain.uploads import Upload


class ServiceUnavailable(Exception):
    """A backing service did not answer in time, is failing, or is saturated."""

    def __init__(self, service: str, reason: str) -> None:
        super().__init__(f"{service}: {reason}")
        self.service = service
        self.reason = reason


class Probe(Protocol):
    """Something whose health can be asked with one cheap round trip."""

    name: str

    async def ping(self) -> None:
        """Return when the service answered; raise when it did not."""


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


@dataclass(frozen=True)
class Message:
    to: tuple[str, ...]
    subject: str
    text: str
    html: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Mailer(Protocol):
    def send(self, message: Message) -> None:
        """Hand the message to the mail service, raising if it was refused."""


class JobPublisher(Protocol):
    def publish(self, job_id: str, *, queue: str) -> None:
        """Hand the outbox's job to the broker, on ``queue``, for the worker tier; raise if it was not taken."""


# --- Persistence: repositories behind one unit of work -------------------------------------------


class UserRepository(Protocol):
    async def add(self, *, email: str, password_hash: str, is_admin: bool, quota_bytes: int) -> User: ...
    async def get(self, user_id: int) -> User | None: ...
    async def by_email(self, email: str) -> User | None: ...
    async def list(self) -> list[User]: ...
    async def set_password(self, user_id: int, password_hash: str) -> None: ...
    async def set_disabled(self, user_id: int, disabled: bool) -> None: ...

    async def reserve_bytes(self, user_id: int, size: int) -> bool:
        """Add ``size`` to the user's usage only if it stays within quota, atomically."""

    async def release_bytes(self, user_id: int, size: int) -> None: ...


class TokenRepository(Protocol):
    async def add(self, *, user_id: int, name: str, prefix: str, token_hash: str) -> ApiToken: ...
    async def owner_of(self, token_hash: str) -> tuple[ApiToken, User] | None: ...
    async def list_for(self, user_id: int) -> list[ApiToken]: ...
    async def revoke(self, user_id: int, token_id: int, now: datetime) -> bool: ...
    async def revoke_all(self, user_id: int, now: datetime) -> int:
        """Revoke every active token of the user; returns how many were."""
        ...

    async def touch(self, token_id: int, now: datetime) -> None: ...


@dataclass(frozen=True)
class FileOrder:
    """One order a listing of files can come in: by a ``StoredFile`` field, ties broken by id."""

    field: str
    descending: bool = False


# Every sort a file listing takes, by the name clients give it, in the order they are offered: the API's
# parameter type and the page's choices are this one list.
FileSort = Literal["-created", "created", "name", "-name", "size", "-size"]
FILE_SORTS: dict[FileSort, FileOrder] = {
    "-created": FileOrder("created_at", descending=True),
    "created": FileOrder("created_at"),
    "name": FileOrder("name"),
    "-name": FileOrder("name", descending=True),
    "size": FileOrder("size"),
    "-size": FileOrder("size", descending=True),
}
assert tuple(FILE_SORTS) == get_args(FileSort), "every sort has an order, in the order offered"


class FileRepository(Protocol):
    async def add(self, file: StoredFile) -> None: ...
    async def get(self, file_id: str) -> StoredFile | None: ...
    async def get_many(self, file_ids: list[str]) -> list[StoredFile]: ...
    async def list_for(self, owner_id: int, *, sort: str, limit: int, offset: int) -> tuple[list[StoredFile], int]:
        """A page of the owner's files in the order ``FILE_SORTS[sort]``, and how many they own in all."""

    async def rename(self, file_id: str, name: str) -> None: ...
    async def delete(self, file_id: str) -> None: ...
    async def set_scan_status(self, file_id: str, status: str) -> None: ...
    async def set_thumbnail(self, file_id: str, key: str) -> None: ...
    async def all_keys(self) -> dict[str, tuple[str, int, str]]:
        """Every stored object's key, with its file id, size and sha256 (for storage checks)."""

    async def thumbnail_keys(self) -> set[str]: ...


class ShareRepository(Protocol):
    async def add(
        self,
        *,
        token: str,
        owner_id: int,
        file_ids: list[str],
        expires_at: datetime,
        max_downloads: int | None,
        password_hash: str | None,
        note: str | None,
        now: datetime,
        delete_files_when_done: bool = False,
    ) -> Share: ...
    async def get(self, share_id: int) -> Share | None: ...
    async def by_token(self, token: str) -> Share | None: ...
    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[Share], int]: ...
    async def for_file(self, file_id: str) -> list[Share]: ...
    async def revoke(self, share_id: int, now: datetime) -> None: ...

    async def take_download(self, share_id: int, now: datetime) -> int | None:
        """Count one download if the share is still open, in one atomic statement; the new count, or None."""

    async def ended(self, now: datetime, *, limit: int, after_id: int = 0) -> list[Share]:
        """Shares that can no longer be used: expired, revoked or out of downloads."""

    async def delete(self, share_id: int) -> None: ...
    async def open_shares_of(self, file_id: str, now: datetime) -> int:
        """How many shares of the file are still open (``domain.sharing.OPEN_WHILE``)."""


class JobRepository(Protocol):
    async def add(self, kind: str, payload: dict[str, Any], *, queue: str, max_attempts: int = 5) -> str:
        """Record a job in the current transaction; it is published only if the transaction commits."""

    async def get(self, job_id: str) -> Job | None: ...
    async def recent(self, *, status: str | None, limit: int) -> list[Job]: ...
    async def retry(self, job_id: str) -> bool:
        """Put a parked (failed) job back in the outbox with fresh attempts; False when there is none."""


class DueJobs(Protocol):
    """A batch of jobs the relay took to publish; no other relay sees them until the batch ends."""

    jobs: list[Job]

    async def published(self, job_ids: list[str]) -> None:
        """Record that these jobs of the batch were handed to the broker."""


class JobQueue(Protocol):
    """The worker's side of the outbox: jobs taken from it, run, and their outcome recorded.

    While a worker runs a job it holds the job (``hold``). That hold is the job's heartbeat: it ends with
    the worker however the worker ends, so a job marked running that nobody holds has lost its worker.
    Each method is one short transaction of its own, apart from any unit of work.
    """

    def hold(self, job_id: str) -> AbstractAsyncContextManager[bool]:
        """Hold the job while the block runs: True, or False at once when another worker holds it."""

    async def claim(self, job_id: str, now: datetime) -> Job | None:
        """Mark the job running and count the attempt, if it ``may_start``; the job as claimed, or None."""

    async def finish(self, job_id: str, now: datetime) -> None:
        """The job is done."""

    async def retry_later(self, job_id: str, at: datetime, error: str) -> None:
        """The attempt failed: back to pending, due again ``at``."""

    async def park(self, job_id: str, now: datetime, error: str) -> None:
        """The last attempt failed: failed for good, until an operator retries it."""

    def due(self, *, limit: int, republish_after: timedelta) -> AbstractAsyncContextManager[DueJobs]:
        """Pending jobs that are due, and published ones no worker started within ``republish_after``,
        oldest first."""

    async def recover_orphans(self) -> int:
        """Hand running jobs that nobody holds back to pending; how many were."""

    def wakeups(self) -> AbstractAsyncContextManager[Callable[[float], Awaitable[None]]]:
        """A wait that returns when a job was added (or after the given seconds), for as long as the block runs.

        Raises ``ServiceUnavailable`` when the database cannot be listened to.
        """


@dataclass(frozen=True)
class QueueBacklog:
    """One queue's outbox: due jobs not yet handed to the broker, and handed ones no worker started."""

    due: int
    waiting: int


class OutboxCensus(Protocol):
    def count(self) -> dict[str, QueueBacklog]:
        """The outbox by queue, now (blocking; queues without unfinished jobs are left out)."""


class SweepLedger(Protocol):
    async def sweep_once(self, slot: int, worker: str, sweep: Callable[[], Awaitable[dict[str, Any]]]) -> bool:
        """Run ``sweep`` if no worker has swept ``slot`` yet nor is sweeping now, and record what it purged."""


class UploadRepository(Protocol):
    async def add(self, upload: Upload) -> None: ...
    async def get(self, upload_id: str) -> Upload | None: ...

    async def advance(self, upload_id: str, *, from_offset: int, point: StagedPoint, expires_at: datetime) -> bool:
        """Move the offset on, only if it is still ``from_offset``; True if it moved."""

    async def mark_finished(self, upload_id: str, file_id: str) -> None: ...
    async def delete(self, upload_id: str) -> None: ...

    async def expired(self, now: datetime, *, limit: int, after_id: str = "") -> list[Upload]:
        """Uploads past their expiry, finished or not, in id order after ``after_id``."""

    async def live_ids(self) -> set[str]:
        """Ids of every upload still on record (for storage checks)."""


class UploadLocks(Protocol):
    def hold(self, upload_id: str) -> AbstractAsyncContextManager[None]:
        """Exclusive right to write the upload while the block runs; raises UploadBusy if another request has it.

        The right ends with the block, or with the process holding it, however it dies.
        """


class UnitOfWork(Protocol):
    """One database transaction and the repositories that work inside it."""

    @property
    def users(self) -> UserRepository: ...
    @property
    def tokens(self) -> TokenRepository: ...
    @property
    def files(self) -> FileRepository: ...
    @property
    def shares(self) -> ShareRepository: ...
    @property
    def jobs(self) -> JobRepository: ...
    @property
    def uploads(self) -> UploadRepository: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]


# --- Other backing services ----------------------------------------------------------------------


class PasswordHasher(Protocol):
    async def hash(self, password: str) -> str: ...
    async def verify(self, password_hash: str, password: str) -> bool: ...


class SessionStore(Probe, Protocol):
    """Server-side sessions: the browser holds only a random id."""

    async def load(self, session_id: str) -> dict[str, Any] | None: ...
    async def save(self, session_id: str, data: dict[str, Any]) -> None: ...
    async def delete(self, session_id: str) -> None: ...


class Scanner(Protocol):
    async def scan(self, chunks: AsyncIterator[bytes]) -> str | None:
        """The name of the malware found in the stream, or None when it is clean."""


class Thumbnailer(Protocol):
    async def thumbnail(self, data: bytes) -> bytes | None:
        """A small WebP preview of an image, or None when the bytes are not a usable image."""


class RateLimiter(Protocol):
    async def hit(self, key: str, *, limit: int, window: int) -> int:
        """Count one attempt; return 0 if allowed, else the seconds until the next is."""
