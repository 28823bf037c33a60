"""In-memory fakes of ``satchel.ports``, for testing the services without any backing service.

The repositories mimic what the SQL ones promise: every read returns a copy (so a service mutating
what it read changes nothing until it writes), the conditional updates (``reserve_bytes``,
``take_download``) only apply when their condition holds, and a unit of work that is not committed
leaves no trace. State lives in a ``FakeDatabase`` that all units of work made from it share.

``ports.JobQueue`` and ``ports.SweepLedger`` have no fake: only the worker tier uses them, and what they
promise is PostgreSQL's own (an advisory lock that ends with its session, ``SKIP LOCKED``, a notify heard
only on commit), so they are specified on the database itself, in tests/integration/test_jobs.py.
"""

from __future__ import annotations

import asyncio
import copy
from collections import Counter
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from satchel.domain.accounts import ApiToken, User
from satchel.domain.audit import AuditEvent, AuditFilter, announce
from satchel.domain.files import StoredFile
from satchel.domain.identities import AlreadyLinked, LinkedIdentity
from satchel.domain.invitations import Invitation
from satchel.domain.jobs import FAILED, PENDING, Job
from satchel.domain.password_resets import PasswordReset
from satchel.domain.requests import UploadRequest
from satchel.domain.sharing import Share
from satchel.domain.uploads import Upload
from satchel.ports.persistence import FILE_SORTS, OwnedFile, OwnedShare
from satchel.ports.storage import StagedPoint, StoredObject

T = TypeVar("T")


def _copy(value: T) -> T:
    return copy.deepcopy(value)


class FakeClock:
    """A clock that stands still until told to move."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime(2025, 1, 1, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta | None = None, **kwargs: float) -> datetime:
        self.now += delta if delta is not None else timedelta(**kwargs)
        return self.now


class ConstraintViolation(Exception):
    """What the fake raises where the database would refuse a row (a unique constraint)."""


# --- The database and its tables ----------------------------------------------------------------


@dataclass
class Tables:
    users: dict[int, User] = field(default_factory=dict)
    tokens: dict[int, ApiToken] = field(default_factory=dict)
    token_hashes: dict[int, str] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    shares: dict[int, Share] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    upload_requests: dict[int, UploadRequest] = field(default_factory=dict)
    request_files: dict[int, list[str]] = field(default_factory=dict)  # by request, in the order received
    uploads: dict[str, Upload] = field(default_factory=dict)
    invitations: dict[int, Invitation] = field(default_factory=dict)
    invitation_hashes: dict[int, str] = field(default_factory=dict)
    password_resets: dict[int, PasswordReset] = field(default_factory=dict)
    reset_hashes: dict[int, str] = field(default_factory=dict)
    identities: dict[int, LinkedIdentity] = field(default_factory=dict)
    audit: list[AuditEvent] = field(default_factory=list)
    last_id: int = 0

    def next_id(self) -> int:
        self.last_id += 1
        return self.last_id


class FakeDatabase:
    """The committed state. Set ``fail_commits`` to an exception to make every commit raise it."""

    def __init__(self, clock: Callable[[], datetime] | None = None) -> None:
        self.tables = Tables()
        self.clock = clock or FakeClock()
        self.fail_commits: Exception | None = None
        self.commits = 0

    @property
    def users(self) -> dict[int, User]:
        return self.tables.users

    @property
    def tokens(self) -> dict[int, ApiToken]:
        return self.tables.tokens

    @property
    def token_hashes(self) -> dict[int, str]:
        return self.tables.token_hashes

    @property
    def files(self) -> dict[str, StoredFile]:
        return self.tables.files

    @property
    def shares(self) -> dict[int, Share]:
        return self.tables.shares

    @property
    def invitations(self) -> dict[int, Invitation]:
        return self.tables.invitations

    @property
    def audit(self) -> list[AuditEvent]:
        return self.tables.audit

    def uow(self) -> FakeUnitOfWork:
        """A ``UnitOfWorkFactory``: pass ``db.uow`` to a service."""
        return FakeUnitOfWork(self)

    def add_user(self, email: str, *, quota: int = 10**9, is_admin: bool = False) -> User:
        """An account added and committed as a test's starting point (its password is never checked)."""

        async def add() -> User:
            async with self.uow() as uow:
                user = await uow.users.add(email=email, password_hash="x", is_admin=is_admin, quota_bytes=quota)
                await uow.commit()
            return user

        return asyncio.run(add())


class FakeUnitOfWork:
    """Works on a staged copy of the tables; ``commit`` publishes it, leaving without committing drops it."""

    def __init__(self, db: FakeDatabase) -> None:
        self._db = db
        self.committed = False

    async def __aenter__(self) -> FakeUnitOfWork:
        staged = _copy(self._db.tables)
        self.users = FakeUsers(staged, self._db.clock)
        self.tokens = FakeTokens(staged, self._db.clock)
        self.files = FakeFiles(staged)
        self.shares = FakeShares(staged)
        self.jobs = FakeJobs(staged, self._db.clock)
        self.requests = FakeUploadRequests(staged)
        self.uploads = FakeUploads(staged)
        self.invitations = FakeInvitations(staged)
        self.password_resets = FakePasswordResets(staged)
        self.identities = FakeIdentities(staged)
        self.audit = FakeAudit(staged)
        self._staged = staged
        return self

    async def __aexit__(self, *exc: object) -> None:
        del self._staged  # whatever was not committed is gone

    async def commit(self) -> None:
        if self._db.fail_commits is not None:
            raise self._db.fail_commits
        self._db.tables = _copy(self._staged)
        self._db.commits += 1
        self.committed = True
        self.audit.committed()


# --- Repositories ---------------------------------------------------------------------------------


class FakeUsers:
    def __init__(self, tables: Tables, clock: Callable[[], datetime]) -> None:
        self._t = tables
        self._clock = clock

    async def add(self, *, email: str, password_hash: str, is_admin: bool, quota_bytes: int) -> User:
        if any(u.email == email for u in self._t.users.values()):
            raise ConstraintViolation(f"users.email {email!r} already exists")
        user = User(
            id=self._t.next_id(), email=email, password_hash=password_hash, is_admin=is_admin, disabled=False,
            quota_bytes=quota_bytes, used_bytes=0, created_at=self._clock(),
        )  # fmt: skip
        self._t.users[user.id] = user
        return _copy(user)

    async def get(self, user_id: int) -> User | None:
        return _copy(self._t.users.get(user_id))

    async def by_email(self, email: str) -> User | None:
        return _copy(next((u for u in self._t.users.values() if u.email == email), None))

    async def search(self, *, search: str | None, limit: int, offset: int) -> tuple[list[User], int]:
        needle = (search or "").casefold()
        found = sorted((u for u in self._t.users.values() if needle in u.email.casefold()), key=lambda u: -u.id)
        return [_copy(u) for u in found[offset : offset + limit]], len(found)

    async def list(self) -> list[User]:
        return [_copy(u) for _, u in sorted(self._t.users.items())]

    async def lock(self, user_ids: Collection[int]) -> dict[int, User]:
        """The accounts as they are now; the fakes hold no lock (the PostgreSQL one is proven against a real server)."""
        return {i: _copy(u) for i, u in sorted(self._t.users.items()) if i in set(user_ids)}

    async def set_password(self, user_id: int, password_hash: str) -> None:
        if user := self._t.users.get(user_id):
            user.password_hash = password_hash

    async def set_disabled(self, user_id: int, disabled: bool) -> None:
        if user := self._t.users.get(user_id):
            user.disabled = disabled

    async def set_admin(self, user_id: int, is_admin: bool) -> None:
        if user := self._t.users.get(user_id):
            user.is_admin = is_admin

    async def set_quota(self, user_id: int, quota_bytes: int) -> bool:
        user = self._t.users.get(user_id)
        if user is None or user.used_bytes > quota_bytes:
            return False
        user.quota_bytes = quota_bytes
        return True

    async def end_sessions(self, user_id: int) -> None:
        if user := self._t.users.get(user_id):
            user.session_epoch += 1

    async def signed_in(self, user_id: int, at: datetime) -> None:
        if user := self._t.users.get(user_id):
            user.last_signed_in_at = at

    async def reserve_bytes(self, user_id: int, size: int) -> bool:
        user = self._t.users.get(user_id)
        if user is None or user.used_bytes + size > user.quota_bytes:
            return False
        user.used_bytes += size
        return True

    async def release_bytes(self, user_id: int, size: int) -> None:
        if user := self._t.users.get(user_id):
            user.used_bytes = max(0, user.used_bytes - size)


class FakeTokens:
    def __init__(self, tables: Tables, clock: Callable[[], datetime]) -> None:
        self._t = tables
        self._clock = clock

    async def add(self, *, user_id: int, name: str, prefix: str, token_hash: str) -> ApiToken:
        if token_hash in self._t.token_hashes.values():
            raise ConstraintViolation("api_tokens.token_hash already exists")
        token = ApiToken(
            id=self._t.next_id(), user_id=user_id, name=name, prefix=prefix, created_at=self._clock(),
            last_used_at=None, revoked_at=None,
        )  # fmt: skip
        self._t.tokens[token.id] = token
        self._t.token_hashes[token.id] = token_hash
        return _copy(token)

    async def owner_of(self, token_hash: str) -> tuple[ApiToken, User] | None:
        for token_id, stored_hash in self._t.token_hashes.items():
            token = self._t.tokens[token_id]
            if stored_hash == token_hash and token.revoked_at is None:
                return _copy(token), _copy(self._t.users[token.user_id])
        return None

    async def list_for(self, user_id: int) -> list[ApiToken]:
        return [_copy(t) for t in sorted(self._t.tokens.values(), key=lambda t: -t.id) if t.user_id == user_id]

    async def revoke(self, user_id: int, token_id: int, now: datetime) -> bool:
        token = self._t.tokens.get(token_id)
        if token is None or token.user_id != user_id or token.revoked_at is not None:
            return False
        token.revoked_at = now
        return True

    async def revoke_all(self, user_id: int, now: datetime) -> int:
        active = [t for t in self._t.tokens.values() if t.user_id == user_id and t.revoked_at is None]
        for token in active:
            token.revoked_at = now
        return len(active)

    async def touch(self, token_id: int, now: datetime) -> None:
        if token := self._t.tokens.get(token_id):
            token.last_used_at = now


class FakeFiles:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(self, file: StoredFile) -> None:
        if file.id in self._t.files or any(f.storage_key == file.storage_key for f in self._t.files.values()):
            raise ConstraintViolation("files.id or files.storage_key already exists")
        self._t.files[file.id] = _copy(file)

    async def get(self, file_id: str) -> StoredFile | None:
        return _copy(self._t.files.get(file_id))

    async def get_many(self, file_ids: list[str]) -> list[StoredFile]:
        return [_copy(self._t.files[i]) for i in file_ids if i in self._t.files]

    async def list_for(self, owner_id: int, *, sort: str, limit: int, offset: int) -> tuple[list[StoredFile], int]:
        order = FILE_SORTS[sort]  # an unknown sort is a KeyError, as in the SQL repository
        owned = sorted((f for f in self._t.files.values() if f.owner_id == owner_id), key=lambda f: f.id)
        owned.sort(key=lambda f: getattr(f, order.field), reverse=order.descending)  # stable: ties in id order
        return [_copy(f) for f in owned[offset : offset + limit]], len(owned)

    async def list_all(self, *, sort: str, search: str | None, limit: int, offset: int) -> tuple[list[OwnedFile], int]:
        order = FILE_SORTS[sort]
        needle = (search or "").casefold()
        found = [
            OwnedFile(_copy(f), self._t.users[f.owner_id].email)
            for f in sorted(self._t.files.values(), key=lambda f: f.id)
            if needle in f.name.casefold() or needle in self._t.users[f.owner_id].email.casefold()
        ]
        found.sort(key=lambda o: getattr(o.file, order.field), reverse=order.descending)
        return found[offset : offset + limit], len(found)

    async def rename(self, file_id: str, name: str) -> None:
        if file := self._t.files.get(file_id):
            file.name = name

    async def delete(self, file_id: str) -> None:
        self._t.files.pop(file_id, None)
        for share in self._t.shares.values():  # share_files rows cascade
            share.file_ids = [i for i in share.file_ids if i != file_id]

    async def set_scan_status(self, file_id: str, status: str) -> None:
        if file := self._t.files.get(file_id):
            file.scan_status = status

    async def set_thumbnail(self, file_id: str, key: str) -> None:
        if file := self._t.files.get(file_id):
            file.thumbnail_key = key

    async def set_preview_type(self, file_id: str, preview_type: str) -> None:
        file = self._t.files.get(file_id)
        if file is not None and file.preview_type is None:
            file.preview_type = preview_type

    async def all_keys(self) -> dict[str, tuple[str, int, str]]:
        return {f.storage_key: (f.id, f.size, f.sha256) for f in self._t.files.values()}

    async def thumbnail_keys(self) -> set[str]:
        return {f.thumbnail_key for f in self._t.files.values() if f.thumbnail_key}


class FakeShares:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(
        self, *, token: str, owner_id: int, file_ids: list[str], expires_at: datetime, max_downloads: int | None,
        password_hash: str | None, note: str | None, now: datetime, delete_files_when_done: bool = False,
        allow_previews: bool = False, title: str | None = None,
    ) -> Share:  # fmt: skip
        if any(s.token == token for s in self._t.shares.values()):
            raise ConstraintViolation("shares.token already exists")
        share = Share(
            id=self._t.next_id(), token=token, owner_id=owner_id, file_ids=list(file_ids), created_at=now,
            expires_at=expires_at, max_downloads=max_downloads, download_count=0, password_hash=password_hash,
            note=note, delete_files_when_done=delete_files_when_done, allow_previews=allow_previews, title=title,
        )  # fmt: skip
        self._t.shares[share.id] = share
        return _copy(share)

    async def get(self, share_id: int) -> Share | None:
        return _copy(self._t.shares.get(share_id))

    async def by_token(self, token: str) -> Share | None:
        return _copy(next((s for s in self._t.shares.values() if s.token == token), None))

    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[Share], int]:
        owned = [s for s in self._t.shares.values() if s.owner_id == owner_id]
        owned.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        return [_copy(s) for s in owned[offset : offset + limit]], len(owned)

    async def list_all(
        self, *, status: str | None, now: datetime, limit: int, offset: int
    ) -> tuple[list[OwnedShare], int]:
        found = [s for s in self._t.shares.values() if status is None or s.status(now) == status]
        found.sort(key=lambda s: (s.created_at, s.id), reverse=True)
        page = [
            OwnedShare(_copy(s), self._t.users[s.owner_id].email, [self._t.files[i].name for i in s.file_ids])
            for s in found[offset : offset + limit]
        ]
        return page, len(found)

    async def for_file(self, file_id: str) -> list[Share]:
        found = [s for s in self._t.shares.values() if file_id in s.file_ids]
        return [_copy(s) for s in sorted(found, key=lambda s: s.created_at, reverse=True)]

    async def revoke(self, share_id: int, now: datetime) -> None:
        share = self._t.shares.get(share_id)
        if share is not None and share.revoked_at is None:
            share.revoked_at = now

    async def take_download(self, share_id: int, now: datetime) -> int | None:
        share = self._t.shares.get(share_id)
        if share is None or not share.is_open(now):
            return None
        share.download_count += 1
        return share.download_count

    async def ended(self, now: datetime, *, limit: int, after_id: int = 0) -> list[Share]:
        ended = [s for s in self._t.shares.values() if not s.is_open(now) and s.swept_at is None and s.id > after_id]
        return [_copy(s) for s in sorted(ended, key=lambda s: s.id)[:limit]]

    async def mark_swept(self, share_id: int, now: datetime) -> None:
        share = self._t.shares.get(share_id)
        if share is not None and share.swept_at is None:
            share.swept_at = now

    async def swept_before(self, moment: datetime, *, limit: int, after_id: int = 0) -> list[int]:
        old = [s.id for s in self._t.shares.values() if s.swept_at is not None and s.swept_at <= moment]
        return sorted(i for i in old if i > after_id)[:limit]

    async def delete(self, share_id: int) -> None:
        self._t.shares.pop(share_id, None)

    async def open_shares_of(self, file_id: str, now: datetime) -> int:
        return sum(1 for s in self._t.shares.values() if file_id in s.file_ids and s.is_open(now))


class FakeUploadRequests:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(
        self, *, token: str, owner_id: int, expires_at: datetime, max_files: int | None, max_bytes: int | None,
        password_hash: str | None, note: str | None, now: datetime,
    ) -> UploadRequest:  # fmt: skip
        if any(r.token == token for r in self._t.upload_requests.values()):
            raise ConstraintViolation("upload_requests.token already exists")
        request = UploadRequest(
            id=self._t.next_id(), token=token, owner_id=owner_id, created_at=now, expires_at=expires_at,
            max_files=max_files, max_bytes=max_bytes, received_files=0, received_bytes=0,
            password_hash=password_hash, note=note,
        )  # fmt: skip
        self._t.upload_requests[request.id] = request
        return _copy(request)

    async def get(self, request_id: int) -> UploadRequest | None:
        return _copy(self._t.upload_requests.get(request_id))

    async def by_token(self, token: str) -> UploadRequest | None:
        return _copy(next((r for r in self._t.upload_requests.values() if r.token == token), None))

    async def list_for(self, owner_id: int, *, limit: int, offset: int) -> tuple[list[UploadRequest], int]:
        owned = [r for r in self._t.upload_requests.values() if r.owner_id == owner_id]
        owned.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        return [_copy(r) for r in owned[offset : offset + limit]], len(owned)

    async def revoke(self, request_id: int, now: datetime) -> None:
        request = self._t.upload_requests.get(request_id)
        if request is not None and request.revoked_at is None:
            request.revoked_at = now

    async def take(self, request_id: int, file_id: str, size: int, now: datetime) -> bool:
        request = self._t.upload_requests.get(request_id)
        if request is None or request.ended_by(now) is not None:
            return False
        if request.remaining_bytes is not None and size > request.remaining_bytes:
            return False
        request.received_files += 1
        request.received_bytes += size
        self._t.request_files.setdefault(request_id, []).append(file_id)
        return True

    async def received(self, request_id: int) -> list[StoredFile]:
        ids = self._t.request_files.get(request_id, [])
        return [_copy(self._t.files[i]) for i in ids if i in self._t.files]


class FakeUploads:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(self, upload: Upload) -> None:
        if upload.id in self._t.uploads or any(u.storage_key == upload.storage_key for u in self._t.uploads.values()):
            raise ConstraintViolation("uploads.id or uploads.storage_key already exists")
        self._t.uploads[upload.id] = _copy(upload)

    async def get(self, upload_id: str) -> Upload | None:
        return _copy(self._t.uploads.get(upload_id))

    async def advance(self, upload_id: str, *, from_offset: int, point: StagedPoint, expires_at: datetime) -> bool:
        upload = self._t.uploads.get(upload_id)
        if upload is None or upload.offset != from_offset or upload.finished:
            return False
        upload.offset, upload.staging, upload.expires_at = point.offset, _copy(point.staging), expires_at
        return True

    async def mark_finished(self, upload_id: str, file_id: str) -> None:
        if upload := self._t.uploads.get(upload_id):
            upload.file_id = file_id

    async def delete(self, upload_id: str) -> None:
        self._t.uploads.pop(upload_id, None)

    async def abandoned(self, now: datetime, *, limit: int, after_id: str = "") -> list[Upload]:
        found = [
            u for _, u in sorted(self._t.uploads.items())
            if u.id > after_id and u.abandoned(now, self._t.upload_requests.get(u.request_id or 0))
        ]  # fmt: skip
        return [_copy(u) for u in found[:limit]]

    async def live_ids(self) -> set[str]:
        return set(self._t.uploads)


class FakeInvitations:
    """Invitations, with the hash of each one's token kept beside it as the table keeps it."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables

    async def add(
        self, *, email: str, is_admin: bool, token_hash: str, invited_by_email: str | None, expires_at: datetime,
        now: datetime,
    ) -> Invitation:  # fmt: skip
        if token_hash in self._t.invitation_hashes.values():
            raise ConstraintViolation("invitations.token_hash already exists")
        invitation = Invitation(
            id=self._t.next_id(), email=email, is_admin=is_admin, invited_by_email=invited_by_email, created_at=now,
            expires_at=expires_at,
        )  # fmt: skip
        self._t.invitations[invitation.id] = invitation
        self._t.invitation_hashes[invitation.id] = token_hash
        return _copy(invitation)

    async def get(self, invitation_id: int) -> Invitation | None:
        return _copy(self._t.invitations.get(invitation_id))

    async def by_token(self, token_hash: str) -> Invitation | None:
        found = [i for i, stored in self._t.invitation_hashes.items() if stored == token_hash]
        return _copy(self._t.invitations[found[0]]) if found else None

    async def pending_for(self, email: str, now: datetime) -> Invitation | None:
        pending = [i for i in self._t.invitations.values() if i.email == email and i.is_open(now)]
        return _copy(max(pending, key=lambda i: i.id)) if pending else None

    async def list(self, *, status: str | None, now: datetime, limit: int, offset: int) -> tuple[list[Invitation], int]:
        found = [i for i in self._t.invitations.values() if status is None or i.status(now) == status]
        found.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return [_copy(i) for i in found[offset : offset + limit]], len(found)

    async def renew(self, invitation_id: int, *, token_hash: str, expires_at: datetime) -> bool:
        invitation = self._t.invitations.get(invitation_id)
        if invitation is None or invitation.accepted_at is not None or invitation.revoked_at is not None:
            return False
        invitation.expires_at = expires_at
        self._t.invitation_hashes[invitation_id] = token_hash
        return True

    async def revoke(self, invitation_id: int, now: datetime) -> bool:
        invitation = self._t.invitations.get(invitation_id)
        if invitation is None or invitation.accepted_at is not None or invitation.revoked_at is not None:
            return False
        invitation.revoked_at = now
        return True

    async def accept(self, token_hash: str, now: datetime) -> Invitation | None:
        found = [i for i, stored in self._t.invitation_hashes.items() if stored == token_hash]
        invitation = self._t.invitations[found[0]] if found else None
        if invitation is None or not invitation.is_open(now):
            return None
        invitation.accepted_at = now
        return _copy(invitation)

    async def accept_for(self, email: str, now: datetime) -> Invitation | None:
        pending = [i for i in self._t.invitations.values() if i.email == email and i.is_open(now)]
        if not pending:
            return None
        newest = max(pending, key=lambda i: i.id)
        newest.accepted_at = now
        return _copy(newest)


class FakePasswordResets:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def _by_hash(self, token_hash: str) -> PasswordReset | None:
        found = [i for i, stored in self._t.reset_hashes.items() if stored == token_hash]
        return self._t.password_resets[found[0]] if found else None

    async def add(self, *, user_id: int, token_hash: str, expires_at: datetime, now: datetime) -> PasswordReset:
        if (known := self._by_hash(token_hash)) is not None:
            return _copy(known)
        reset = PasswordReset(id=self._t.next_id(), user_id=user_id, created_at=now, expires_at=expires_at)
        self._t.password_resets[reset.id] = reset
        self._t.reset_hashes[reset.id] = token_hash
        return _copy(reset)

    async def by_token(self, token_hash: str) -> PasswordReset | None:
        return _copy(self._by_hash(token_hash))

    async def use(self, token_hash: str, now: datetime) -> PasswordReset | None:
        reset = self._by_hash(token_hash)
        if reset is None or not reset.is_open(now):
            return None
        reset.used_at = now
        return _copy(reset)

    async def end_all(self, user_id: int, now: datetime) -> int:
        pending = [r for r in self._t.password_resets.values() if r.user_id == user_id and r.used_at is None]
        for reset in pending:
            reset.used_at = now
        return len(pending)


class FakeIdentities:
    def __init__(self, tables: Tables) -> None:
        self._t = tables

    def _named(self, issuer: str, subject: str) -> LinkedIdentity | None:
        return next((i for i in self._t.identities.values() if (i.issuer, i.subject) == (issuer, subject)), None)

    async def add(self, *, issuer: str, subject: str, user_id: int, email: str, now: datetime) -> LinkedIdentity:
        if self._named(issuer, subject) is not None:
            raise AlreadyLinked()  # what the SQL repository makes of its unique constraint
        identity = LinkedIdentity(self._t.next_id(), issuer, subject, user_id, email, created_at=now)
        self._t.identities[identity.id] = identity
        return _copy(identity)

    async def user_of(self, issuer: str, subject: str) -> User | None:
        identity = self._named(issuer, subject)
        return _copy(self._t.users.get(identity.user_id)) if identity else None

    async def used(self, issuer: str, subject: str, now: datetime) -> None:
        if identity := self._named(issuer, subject):
            identity.last_used_at = now


class FakeJobs:
    """The outbox: jobs are rows like any other, kept only if the unit of work commits."""

    def __init__(self, tables: Tables, clock: Callable[[], datetime]) -> None:
        self._t = tables
        self._clock = clock

    async def add(self, kind: str, payload: dict[str, Any], *, queue: str, max_attempts: int = 5) -> str:
        now = self._clock()
        job = Job(
            id=f"job-{self._t.next_id()}", kind=kind, queue=queue, payload=_copy(payload), status=PENDING,
            attempts=0, max_attempts=max_attempts, available_at=now, published_at=None, started_at=None,
            finished_at=None, last_error=None, created_at=now,
        )  # fmt: skip
        self._t.jobs[job.id] = job
        return job.id

    async def get(self, job_id: str) -> Job | None:
        return _copy(self._t.jobs.get(job_id))

    async def recent(self, *, status: str | None, limit: int) -> list[Job]:
        found = [j for j in self._t.jobs.values() if status is None or j.status == status]
        return [_copy(j) for j in sorted(found, key=lambda j: j.created_at, reverse=True)[:limit]]

    async def retry(self, job_id: str) -> bool:
        job = self._t.jobs.get(job_id)
        if job is None or job.status != FAILED:
            return False
        job.status, job.attempts, job.last_error, job.finished_at = PENDING, 0, None, None
        job.available_at = self._clock()
        return True


class FakeAudit:
    """The audit trail: events kept with the unit of work's other rows, logged when it commits."""

    def __init__(self, tables: Tables) -> None:
        self._t = tables
        self.recorded: list[AuditEvent] = []

    async def record(self, event: AuditEvent) -> None:
        event.id = self._t.next_id()
        self._t.audit.append(_copy(event))
        self.recorded.append(event)

    def committed(self) -> None:
        events, self.recorded = self.recorded, []
        announce(events)

    async def list(self, where: AuditFilter, *, limit: int, offset: int) -> tuple[list[AuditEvent], int]:
        found = sorted((e for e in self._t.audit if where.matches(e)), key=lambda e: (e.at, e.id), reverse=True)
        return [_copy(e) for e in found[offset : offset + limit]], len(found)

    async def prune(self, before: datetime) -> int:
        kept = [e for e in self._t.audit if e.at >= before]
        pruned, self._t.audit[:] = len(self._t.audit) - len(kept), kept
        return pruned


# --- Other backing services -----------------------------------------------------------------------


class FakePasswordHasher:
    async def hash(self, password: str) -> str:
        return "hashed:" + password

    async def verify(self, password_hash: str, password: str) -> bool:
        return password_hash == "hashed:" + password


class FakeRateLimiter:
    """Counts hits per key and refuses once a key passes its limit, or always while ``refusing``."""

    def __init__(self, *, refusing: bool = False, retry_after: int = 30) -> None:
        self.refusing = refusing
        self.retry_after = retry_after
        self.hits: Counter[str] = Counter()

    async def hit(self, key: str, *, limit: int, window: int) -> int:
        self.hits[key] += 1
        return self.retry_after if self.refusing or self.hits[key] > limit else 0


class WrappedStorageError(Exception):
    """What ``InMemoryObjectStore(wrap_errors=True)`` raises in place of whatever the chunks raised."""


@dataclass
class InMemoryObjectStore:
    """Objects in a dict. Like S3, an object exists only once its upload completed.

    ``keep_partial`` makes it behave like a local folder instead, where a failed upload leaves the
    bytes received so far behind; ``wrap_errors`` makes it hide the chunks' own exception behind its
    own, as some storage clients do.
    """

    objects: dict[str, bytes] = field(default_factory=dict)
    content_types: dict[str, str | None] = field(default_factory=dict)
    wrap_errors: bool = False
    keep_partial: bool = False
    name: str = "storage"

    async def ping(self) -> None:
        return None

    async def put_stream(
        self, key: str, chunks: AsyncIterator[bytes], *, content_type: str | None = None, filename: str | None = None
    ) -> StoredObject:
        parts: list[bytes] = []
        try:
            async for chunk in chunks:
                parts.append(bytes(chunk))
        except Exception as exc:
            if self.keep_partial:
                self.objects[key] = b"".join(parts)
            if self.wrap_errors:
                raise WrappedStorageError(f"upload of {key} failed") from exc
            raise
        self.objects[key] = b"".join(parts)
        self.content_types[key] = content_type
        return StoredObject(key, len(self.objects[key]))

    async def get_stream(self, key: str, start: int = 0, end: int | None = None) -> AsyncIterator[bytes]:
        if key not in self.objects:
            raise FileNotFoundError(key)
        yield self.objects[key][start:end]

    async def head(self, key: str) -> StoredObject | None:
        data = self.objects.get(key)
        return None if data is None else StoredObject(key, len(data))

    async def delete(self, key: str) -> None:
        self.objects.pop(key, None)
        self.content_types.pop(key, None)

    def local_path(self, key: str) -> Path | None:
        return None

    async def presigned_url(self, key: str, *, filename: str, content_type: str) -> str | None:
        return None
