"""The repositories of each bounded context, and the unit of work (one transaction) they share."""

from __future__ import annotations

from collections.abc import Callable, Collection
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, get_args

from satchel.domain.accounts import ApiToken, User
from satchel.domain.audit import AuditEvent, AuditFilter
from satchel.domain.files import StoredFile
from satchel.domain.identities import LinkedIdentity
from satchel.domain.invitations import Invitation
from satchel.domain.password_resets import PasswordReset
from satchel.domain.requests import UploadRequest
from satchel.domain.sharing import Share
from satchel.domain.uploads import Upload
from satchel.ports.jobs import JobRepository
from satchel.ports.storage import StagedPoint


class UserRepository(Protocol):
    async def add(self, *, email: str, password_hash: str, is_admin: bool, quota_bytes: int) -> User: ...
    async def get(self, user_id: int) -> User | None: ...
    async def by_email(self, email: str) -> User | None: ...
    async def search(self, *, search: str | None, limit: int, offset: int) -> tuple[list[User], int]:
        """A page of accounts, newest first, those whose address contains ``search`` (any case) when it is given,
        and how many match in all: one round trip."""

    async def list(self) -> list[User]: ...

    async def lock(self, user_ids: Collection[int]) -> dict[int, User]:
        """These accounts as they are now, held until the transaction ends: taken in id order, so two
        transactions that lock the same accounts never wait on each other in a cycle."""

    async def set_password(self, user_id: int, password_hash: str) -> None: ...
    async def set_disabled(self, user_id: int, disabled: bool) -> None: ...
    async def set_admin(self, user_id: int, is_admin: bool) -> None: ...

    async def set_quota(self, user_id: int, quota_bytes: int) -> bool:
        """Set the quota only if what the user uses fits in it, atomically; False when it did not."""

    async def end_sessions(self, user_id: int) -> None:
        """Move the session epoch on: every session opened before ends (``User.session_stamp``)."""

    async def signed_in(self, user_id: int, at: datetime) -> None: ...

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


@dataclass(frozen=True)
class OwnedFile:
    """A file with its owner's address, as the admin console lists every user's files."""

    file: StoredFile
    owner_email: str


@dataclass(frozen=True)
class OwnedShare:
    """A share with its owner's address and its files' names, as the admin console lists every share."""

    share: Share
    owner_email: str
    file_names: list[str]


class FileRepository(Protocol):
    async def add(self, file: StoredFile) -> None: ...
    async def get(self, file_id: str) -> StoredFile | None: ...
    async def get_many(self, file_ids: list[str]) -> list[StoredFile]: ...
    async def list_for(self, owner_id: int, *, sort: str, limit: int, offset: int) -> tuple[list[StoredFile], int]:
        """A page of the owner's files in the order ``FILE_SORTS[sort]``, and how many they own in all."""

    async def list_all(self, *, sort: str, search: str | None, limit: int, offset: int) -> tuple[list[OwnedFile], int]:
        """A page of every user's files in the order ``FILE_SORTS[sort]``, those whose name or owner's address
        contains ``search`` (any case) when it is given, and how many match in all: one round trip."""

    async def rename(self, file_id: str, name: str) -> None: ...
    async def delete(self, file_id: str) -> None: ...
    async def set_scan_status(self, file_id: str, status: str) -> None: ...
    async def set_thumbnail(self, file_id: str, key: str) -> None: ...
    async def set_preview_type(self, file_id: str, preview_type: str) -> None:
        """Record the type the file is previewed as, unless one is recorded already: it is decided once."""

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
        allow_previews: bool = False,
        title: str | None = None,
    ) -> Share: ...
    async def get(self, share_id: int) -> Share | None: ...
    async def by_token(self, token: str) -> Share | None: ...
    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[Share], int]: ...
    async def for_file(self, file_id: str) -> list[Share]: ...
    async def list_all(
        self, *, status: str | None, now: datetime, limit: int, offset: int
    ) -> tuple[list[OwnedShare], int]:
        """A page of every user's shares, newest first, those whose ``Share.status`` at ``now`` is ``status``
        when it is given, and how many match in all: one round trip."""

    async def revoke(self, share_id: int, now: datetime) -> None: ...

    async def take_download(self, share_id: int, now: datetime) -> int | None:
        """Count one download if the share is still open, in one atomic statement; the new count, or None."""

    async def ended(self, now: datetime, *, limit: int, after_id: int = 0) -> list[Share]:
        """Shares that can no longer be used (expired, revoked or out of downloads) and that the sweep has not
        dealt with yet (no ``swept_at``), in id order after ``after_id``."""

    async def mark_swept(self, share_id: int, now: datetime) -> None:
        """Record that the sweep dealt with this ended share at ``now``: from then on it is history."""

    async def swept_before(self, moment: datetime, *, limit: int, after_id: int = 0) -> list[int]:
        """The ids, in order after ``after_id``, of shares the sweep dealt with at or before ``moment``."""

    async def delete(self, share_id: int) -> None: ...
    async def open_shares_of(self, file_id: str, now: datetime) -> int:
        """How many shares of the file are still open (``domain.sharing.OPEN_WHILE``)."""


class UploadRepository(Protocol):
    async def add(self, upload: Upload) -> None: ...
    async def get(self, upload_id: str) -> Upload | None: ...

    async def advance(self, upload_id: str, *, from_offset: int, point: StagedPoint, expires_at: datetime) -> bool:
        """Move the offset on, only if it is still ``from_offset``; True if it moved."""

    async def mark_finished(self, upload_id: str, file_id: str) -> None: ...
    async def delete(self, upload_id: str) -> None: ...

    async def abandoned(self, now: datetime, *, limit: int, after_id: str = "") -> list[Upload]:
        """Uploads ``Upload.abandoned`` says nobody will finish (past their expiry, finished or not; unfinished
        ones whose upload link can no longer take them), in id order after ``after_id``."""

    async def live_ids(self) -> set[str]:
        """Ids of every upload still on record (for storage checks)."""


class UploadLocks(Protocol):
    def hold(self, upload_id: str) -> AbstractAsyncContextManager[None]:
        """Exclusive right to write the upload while the block runs; raises UploadBusy if another request has it.

        The right ends with the block, or with the process holding it, however it dies.
        """


class UploadRequestRepository(Protocol):
    async def add(
        self,
        *,
        token: str,
        owner_id: int,
        expires_at: datetime,
        max_files: int | None,
        max_bytes: int | None,
        password_hash: str | None,
        note: str | None,
        now: datetime,
    ) -> UploadRequest: ...
    async def get(self, request_id: int) -> UploadRequest | None: ...
    async def by_token(self, token: str) -> UploadRequest | None: ...
    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[UploadRequest], int]: ...
    async def revoke(self, request_id: int, now: datetime) -> None: ...

    async def take(self, request_id: int, file_id: str, size: int, now: datetime) -> bool:
        """Count the file in if the request is open and has room for ``size`` more bytes, in one atomic
        statement, and record that it came through the request; False when it was refused."""

    async def received(self, request_id: int) -> list[StoredFile]:
        """The files that came in through the request and still exist, in the order they arrived."""


class InvitationRepository(Protocol):
    async def add(
        self,
        *,
        email: str,
        is_admin: bool,
        token_hash: str,
        invited_by_email: str | None,
        expires_at: datetime,
        now: datetime,
    ) -> Invitation: ...
    async def get(self, invitation_id: int) -> Invitation | None: ...
    async def by_token(self, token_hash: str) -> Invitation | None: ...
    async def pending_for(self, email: str, now: datetime) -> Invitation | None:
        """The invitation to ``email`` still waiting at ``now``, if there is one."""

    async def list(self, *, status: str | None, now: datetime, limit: int, offset: int) -> tuple[list[Invitation], int]:
        """A page of invitations, newest first, those whose ``Invitation.status`` at ``now`` is ``status`` when
        it is given, and how many match in all: one round trip."""

    async def renew(self, invitation_id: int, *, token_hash: str, expires_at: datetime) -> bool:
        """Give a pending or expired invitation a new token and expiry; False if it was accepted or revoked."""

    async def revoke(self, invitation_id: int, now: datetime) -> bool:
        """Withdraw an invitation unless it was accepted or revoked already; True if this call withdrew it."""

    async def accept(self, token_hash: str, now: datetime) -> Invitation | None:
        """Use the invitation up, only if it is pending at ``now``, in one atomic statement: of any number of
        concurrent calls, one gets the invitation and the others None."""

    async def accept_for(self, email: str, now: datetime) -> Invitation | None:
        """Use up the newest invitation to ``email`` pending at ``now``, as ``accept`` does, whatever its token:
        an address its identity provider vouches for needs no link."""


class PasswordResetRepository(Protocol):
    async def add(self, *, user_id: int, token_hash: str, expires_at: datetime, now: datetime) -> PasswordReset:
        """Record a reset link; a second add of the same ``token_hash`` changes nothing and returns the first."""

    async def by_token(self, token_hash: str) -> PasswordReset | None: ...

    async def use(self, token_hash: str, now: datetime) -> PasswordReset | None:
        """Use the reset up, only if it is pending at ``now``, in one atomic statement: of any number of
        concurrent calls, one gets the reset and the others None."""

    async def end_all(self, user_id: int, now: datetime) -> int:
        """Use up every pending reset of the account, so no other link sets its password; returns how many."""


class IdentityRepository(Protocol):
    """Accounts linked to an identity provider's users: issuer and subject name the person for good."""

    async def add(self, *, issuer: str, subject: str, user_id: int, email: str, now: datetime) -> LinkedIdentity:
        """Link the identity to the account; linking one identity twice is refused by the database."""

    async def user_of(self, issuer: str, subject: str) -> User | None:
        """The account the identity is linked to, if any."""

    async def used(self, issuer: str, subject: str, now: datetime) -> None:
        """Note when the identity last signed in."""


class AuditTrail(Protocol):
    """The audit trail: events written in the transaction of the change they record."""

    async def record(self, event: AuditEvent) -> None:
        """Add the event to this unit of work; it is kept, and logged, only once the unit commits."""

    async def list(self, where: AuditFilter, *, limit: int, offset: int) -> tuple[list[AuditEvent], int]:
        """A page of the events ``where`` matches, newest first, and how many it matches in all."""

    async def prune(self, before: datetime) -> int:
        """Delete every event older than ``before``; returns how many were."""


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
    @property
    def requests(self) -> UploadRequestRepository: ...
    @property
    def invitations(self) -> InvitationRepository: ...
    @property
    def password_resets(self) -> PasswordResetRepository: ...
    @property
    def identities(self) -> IdentityRepository: ...
    @property
    def audit(self) -> AuditTrail: ...

    async def __aenter__(self) -> UnitOfWork: ...
    async def __aexit__(self, *exc: object) -> None: ...
    async def commit(self) -> None: ...


UnitOfWorkFactory = Callable[[], UnitOfWork]
